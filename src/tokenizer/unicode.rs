//! Unicode facts the pre-tokenizers need: general-category flags per code point (the same
//! categories llama.cpp's `unicode_cpt_flags` carries), and GPT-2's byte <-> unicode mapping.
//!
//! Category ranges come from `regex-syntax`'s Unicode tables (already in the build through
//! `fancy-regex`), so no table is duplicated here.

use std::sync::OnceLock;

pub const NUMBER: u8 = 1;
pub const LETTER: u8 = 2;
pub const PUNCTUATION: u8 = 4;
pub const ACCENT_MARK: u8 = 8;
pub const SYMBOL: u8 = 16;
pub const WHITESPACE: u8 = 32;
/// `\p{C}` less unassigned code points (Cc, Cf, Co, Cs).
pub const CONTROL: u8 = 64;

/// Sorted, disjoint `(first, last, category)` ranges.
struct Tables {
    ranges: Vec<(u32, u32, u8)>,
    ascii: [u8; 128],
}

fn class_ranges(pattern: &str) -> Vec<(u32, u32)> {
    use regex_syntax::hir::{Class, HirKind};
    let hir = regex_syntax::ParserBuilder::new().build().parse(pattern).expect("built-in Unicode class pattern");
    match hir.kind() {
        HirKind::Class(Class::Unicode(c)) => c.ranges().iter().map(|r| (r.start() as u32, r.end() as u32)).collect(),
        _ => Vec::new(),
    }
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let mut ranges = Vec::new();
        for (pat, flag) in [
            (r"\p{N}", NUMBER),
            (r"\p{L}", LETTER),
            (r"\p{P}", PUNCTUATION),
            (r"\p{M}", ACCENT_MARK),
            (r"\p{S}", SYMBOL),
            (r"\p{Cc}", CONTROL),
            (r"\p{Cf}", CONTROL),
            (r"\p{Co}", CONTROL),
        ] {
            ranges.extend(class_ranges(pat).into_iter().map(|(a, b)| (a, b, flag)));
        }
        ranges.sort_unstable();
        let mut ascii = [0u8; 128];
        for (c, slot) in ascii.iter_mut().enumerate() {
            *slot = lookup(&ranges, c as u32) | ws_flag(c as u32);
        }
        Tables { ranges, ascii }
    })
}

fn lookup(ranges: &[(u32, u32, u8)], cpt: u32) -> u8 {
    let i = ranges.partition_point(|r| r.0 <= cpt);
    if i > 0 && ranges[i - 1].1 >= cpt { ranges[i - 1].2 } else { 0 }
}

fn ws_flag(cpt: u32) -> u8 {
    match char::from_u32(cpt) {
        Some(c) if c.is_whitespace() => WHITESPACE,
        _ => 0,
    }
}

/// Category flags of one code point: at most one of NUMBER/LETTER/PUNCTUATION/ACCENT_MARK/SYMBOL/CONTROL,
/// plus WHITESPACE (Unicode White_Space, as llama.cpp's whitespace set).
pub fn flags(c: char) -> u8 {
    let t = tables();
    let cpt = c as u32;
    if cpt < 128 { t.ascii[cpt as usize] } else { lookup(&t.ranges, cpt) | ws_flag(cpt) }
}

/// GPT-2's reversible byte -> printable code point mapping.
pub fn byte_to_char_table() -> &'static [char; 256] {
    static T: OnceLock<[char; 256]> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = ['\0'; 256];
        let direct = |b: u32| (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
        let mut n = 0u32;
        for b in 0..256u32 {
            t[b as usize] = if direct(b) {
                char::from_u32(b).unwrap()
            } else {
                n += 1;
                char::from_u32(255 + n).unwrap()
            };
        }
        t
    })
}

/// Inverse of [`byte_to_char_table`]: the byte a code point stands for, if any.
pub fn char_to_byte(c: char) -> Option<u8> {
    static T: OnceLock<std::collections::HashMap<char, u8>> = OnceLock::new();
    let m = T.get_or_init(|| byte_to_char_table().iter().enumerate().map(|(b, &c)| (c, b as u8)).collect());
    m.get(&c).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories() {
        assert_eq!(flags('a'), LETTER);
        assert_eq!(flags('7'), NUMBER);
        assert_eq!(flags(' '), WHITESPACE);
        assert_eq!(flags('!'), PUNCTUATION);
        assert_eq!(flags('$'), SYMBOL);
        assert_eq!(flags('\u{301}'), ACCENT_MARK);
        assert_eq!(flags('\u{a0}'), WHITESPACE);
        assert_eq!(flags('中'), LETTER);
        assert_eq!(byte_to_char_table()[b' ' as usize], 'Ġ');
        assert_eq!(char_to_byte('Ċ'), Some(b'\n'));
    }
}
