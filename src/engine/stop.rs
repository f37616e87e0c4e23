//! Stop strings that may span token boundaries: text that could be the start of a stop string is
//! held back until it is decided, and the stop string itself is never emitted.

pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

/// What one piece of text released.
#[derive(Debug, PartialEq, Eq)]
pub struct Released {
    pub text: String,
    pub stopped: bool,
}

impl StopMatcher {
    pub fn new(stops: &[String]) -> Self {
        StopMatcher { stops: stops.to_vec(), held: String::new() }
    }

    /// Adds generated text; returns what can be shown now.
    pub fn push(&mut self, piece: &str) -> Released {
        self.held.push_str(piece);
        // The earliest stop occurrence wins.
        if let Some(at) = self.stops.iter().filter_map(|s| self.held.find(s.as_str())).min() {
            let text = self.held[..at].to_string();
            self.held.clear();
            return Released { text, stopped: true };
        }
        let keep = self.longest_partial_suffix();
        let cut = self.held.len() - keep;
        let text = self.held[..cut].to_string();
        self.held.drain(..cut);
        Released { text, stopped: false }
    }

    /// Text still held back when generation ends for another reason: it was not a stop string.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// Length of the longest suffix of `held` that is a proper prefix of some stop string. Such a
    /// suffix starts on a char boundary: a stop string's first byte is never a continuation byte.
    fn longest_partial_suffix(&self) -> usize {
        let h = self.held.as_bytes();
        self.stops
            .iter()
            .flat_map(|s| (1..s.len().min(h.len() + 1)).rev().find(|&k| h.ends_with(&s.as_bytes()[..k])))
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut m = StopMatcher::new(&stops);
        let mut out = String::new();
        for p in pieces {
            let r = m.push(p);
            out.push_str(&r.text);
            if r.stopped {
                return (out, true);
            }
        }
        out.push_str(&m.finish());
        (out, false)
    }

    #[test]
    fn stop_string_split_across_three_pieces() {
        assert_eq!(run(&["<END>"], &["Hello <", "EN", "D> more"]), ("Hello ".into(), true));
    }

    #[test]
    fn near_miss_is_released() {
        assert_eq!(run(&["<END>"], &["a <E", "ND", "! b"]), ("a <END! b".into(), false));
        assert_eq!(run(&["<END>"], &["tail <EN"]), ("tail <EN".into(), false));
    }

    #[test]
    fn held_text_is_not_shown_early() {
        let mut m = StopMatcher::new(&["\n\nUser:".to_string()]);
        assert_eq!(m.push("Hi.\n").text, "Hi.");
        assert_eq!(m.push("\nUs").text, "");
        assert_eq!(m.push("ually").text, "\n\nUsually");
    }

    #[test]
    fn earliest_of_several_stops_wins_and_unicode_is_safe() {
        assert_eq!(run(&["ü!", "b"], &["aü", "!b"]), ("a".into(), true));
        assert_eq!(run(&["é"], &["caf", "é au lait"]), ("caf".into(), true));
        assert_eq!(run(&["🙂x"], &["ok 🙂", "y"]), ("ok 🙂y".into(), false));
    }
}
