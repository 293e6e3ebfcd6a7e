//! `*` wildcards for message types, facilities and applications (`ADT^*`, `LAB*`).

/// A pattern where `*` stands for any run of characters (also none); case-sensitive, as HL7 codes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
}

impl Glob {
    /// A pattern as written.
    pub fn new(pattern: &str) -> Self {
        Glob {
            pattern: pattern.to_string(),
        }
    }

    /// True when `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        let (p, t) = (self.pattern.as_bytes(), text.as_bytes());
        if !p.contains(&b'*') {
            return p == t;
        }
        // Greedy matching with one backtrack point: linear for `*` patterns, no recursion.
        let (mut pi, mut ti) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while ti < t.len() {
            match p.get(pi) {
                Some(b'*') => {
                    star = Some((pi, ti));
                    pi += 1;
                }
                Some(&c) if c == t[ti] => {
                    pi += 1;
                    ti += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        pi = sp + 1;
                        ti = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        p.get(pi..).is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    #[test]
    fn stars_match_any_run() {
        let m = |p: &str, t: &str| Glob::new(p).matches(t);
        assert!(m("ADT", "ADT") && !m("ADT", "ADTX") && !m("ADT", "adt"));
        assert!(m("*", "") && m("*", "A01"));
        assert!(m("A0*", "A01") && !m("A0*", "A11"));
        assert!(m("*LAB*", "MAIN-LAB-2") && !m("*LAB*", "MAIN"));
        assert!(m("A*1*3", "A1213") && !m("A*1*3", "A1214"));
    }
}
