//! A small `--flag value` parser: the CLI has a handful of flags, not enough to justify clap.

use std::collections::HashMap;

pub struct Args {
    pub command: String,
    values: HashMap<String, String>,
    switches: Vec<String>,
}

impl Args {
    /// `switch_names` are flags that take no value.
    pub fn parse(argv: &[String], switch_names: &[&str]) -> Result<Args, String> {
        let mut it = argv.iter();
        let command = it.next().ok_or("no command given")?.clone();
        let mut values = HashMap::new();
        let mut switches = Vec::new();
        while let Some(a) = it.next() {
            let name = a.strip_prefix("--").ok_or_else(|| format!("unexpected argument {a:?}"))?;
            if switch_names.contains(&name) {
                switches.push(name.to_string());
            } else {
                let v = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
                if values.insert(name.to_string(), v.clone()).is_some() {
                    return Err(format!("--{name} given twice"));
                }
            }
        }
        Ok(Args { command, values, switches })
    }

    pub fn has(&self, switch: &str) -> bool {
        self.switches.iter().any(|s| s == switch)
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn required(&self, name: &str) -> Result<&str, String> {
        self.str(name).ok_or_else(|| format!("--{name} is required"))
    }

    pub fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.str(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{name}: {v:?} is not a valid number")),
        }
    }

    /// Flags that were given but that `known` does not list.
    pub fn unknown(&self, known: &[&str]) -> Option<String> {
        self.values.keys().chain(&self.switches).find(|k| !known.contains(&k.as_str())).cloned()
    }
}
