//! The password policy: what a new password must satisfy, with Django's validators as the
//! model (`MinimumLengthValidator`, `NumericPasswordValidator`,
//! `UserAttributeSimilarityValidator`, `CommonPasswordValidator`) and zxcvbn's strength
//! estimate in place of Django's fixed list of common passwords, since zxcvbn also catches
//! keyboard walks, dates, l33t spellings and dictionary words with digits appended.
//!
//! [`PasswordPolicy::check`] reports every violation at once, worded for the person choosing
//! the password, so a form or the command line can show them all in one go. Messages never
//! repeat the password.

use std::fmt;

/// Django's `MinimumLengthValidator` default.
pub const DEFAULT_MIN_LENGTH: usize = 8;
/// Upper bound in bytes. Passwords are hashed with a memory-hard function and scored by
/// zxcvbn, whose matching grows faster than linearly: a megabyte "password" is a denial of
/// service, not a credential.
pub const DEFAULT_MAX_LENGTH: usize = 4096;
/// zxcvbn score 2 ("somewhat guessable": about 10^8 guesses) as the floor, which is where
/// zxcvbn's authors put "protection from unthrottled online attacks".
pub const DEFAULT_MIN_STRENGTH: u8 = 2;
/// zxcvbn only looks at this many characters. Its matchers are quadratic in the length, and
/// appending characters never makes a password weaker, so a prefix gives a lower bound on
/// the strength at bounded cost (zxcvbn-ts truncates the same way).
const STRENGTH_PREFIX_CHARS: usize = 256;
/// User attributes shorter than this are not used for the similarity check: "al" inside a
/// password says nothing about the user "al".
const MIN_SIMILAR_INPUT_CHARS: usize = 3;

/// One reason a password is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyViolation {
    TooShort {
        min: usize,
    },
    TooLong {
        max_bytes: usize,
    },
    EntirelyNumeric,
    TooSimilarToUserInputs,
    /// zxcvbn scored it below the minimum; `warning` is zxcvbn's explanation, if it has one.
    TooWeak {
        warning: Option<String>,
    },
}

impl fmt::Display for PolicyViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { min } => write!(
                f,
                "This password is too short. It must contain at least {min} characters."
            ),
            Self::TooLong { max_bytes } => write!(
                f,
                "This password is too long. It must contain at most {max_bytes} bytes."
            ),
            Self::EntirelyNumeric => f.write_str("This password is entirely numeric."),
            Self::TooSimilarToUserInputs => {
                f.write_str("The password is too similar to the username or e-mail address.")
            }
            Self::TooWeak { warning: None } => {
                f.write_str("This password is too common or too easy to guess.")
            }
            Self::TooWeak {
                warning: Some(warning),
            } => write!(
                f,
                "This password is too common or too easy to guess: {warning}"
            ),
        }
    }
}

/// The rules a new password must meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Minimum length in characters (Unicode scalar values, as Django's `len()`).
    pub min_length: usize,
    /// Maximum length in bytes of UTF-8.
    pub max_length: usize,
    /// Minimum zxcvbn score, 0–4.
    pub min_strength: u8,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: DEFAULT_MIN_LENGTH,
            max_length: DEFAULT_MAX_LENGTH,
            min_strength: DEFAULT_MIN_STRENGTH,
        }
    }
}

impl PasswordPolicy {
    /// Checks `password` against every rule. `user_inputs` are the account's own attributes
    /// (username, e-mail address, names): a password built from them is refused, and zxcvbn
    /// counts them as dictionary words.
    pub fn check(&self, password: &str, user_inputs: &[&str]) -> Result<(), Vec<PolicyViolation>> {
        // The length cap comes first and alone: nothing else runs on an oversized input.
        if password.len() > self.max_length {
            return Err(vec![PolicyViolation::TooLong {
                max_bytes: self.max_length,
            }]);
        }
        let mut violations = Vec::new();
        if password.chars().count() < self.min_length {
            violations.push(PolicyViolation::TooShort {
                min: self.min_length,
            });
        }
        if !password.is_empty() && password.chars().all(char::is_numeric) {
            violations.push(PolicyViolation::EntirelyNumeric);
        }
        let inputs = expand_inputs(user_inputs);
        if is_similar(password, &inputs) {
            violations.push(PolicyViolation::TooSimilarToUserInputs);
        }
        let prefix: String = password.chars().take(STRENGTH_PREFIX_CHARS).collect();
        let input_refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let estimate = zxcvbn::zxcvbn(&prefix, &input_refs);
        if u8::from(estimate.score()) < self.min_strength {
            let warning = estimate
                .feedback()
                .and_then(zxcvbn::feedback::Feedback::warning)
                .map(|w| w.to_string());
            violations.push(PolicyViolation::TooWeak { warning });
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(violations)
        }
    }
}

/// Lower-cased user inputs, plus the local part of anything that looks like an e-mail
/// address (`alice@example.com` → `alice`), since that is the part people reuse.
fn expand_inputs(user_inputs: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for input in user_inputs {
        let lower = input.trim().to_lowercase();
        if lower.is_empty() {
            continue;
        }
        if let Some((local, _)) = lower.split_once('@')
            && !local.is_empty()
        {
            out.push(local.to_owned());
        }
        out.push(lower);
    }
    out
}

/// Case-insensitive containment either way round. A simpler rule than Django's
/// `SequenceMatcher` ratio, and stricter where it matters: `alice2024` for the user `alice`.
fn is_similar(password: &str, inputs: &[String]) -> bool {
    let pw = password.to_lowercase();
    if pw.is_empty() {
        return false;
    }
    inputs.iter().any(|input| {
        input.chars().count() >= MIN_SIMILAR_INPUT_CHARS
            && (pw.contains(input.as_str()) || input.contains(pw.as_str()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pw: &str) -> Result<(), Vec<PolicyViolation>> {
        PasswordPolicy::default().check(pw, &["alice", "alice.smith@example.com"])
    }

    #[test]
    fn strong_passwords_pass() {
        for pw in [
            "correct horse battery staple",
            "Tr0ub4dor&3-kayak-Quartz",
            "vG7#pq2!Lm9zW",
        ] {
            assert_eq!(check(pw), Ok(()), "{pw}");
        }
    }

    #[test]
    fn short_passwords_fail() {
        let v = check("x7#Qp").unwrap_err();
        assert!(v.contains(&PolicyViolation::TooShort { min: 8 }), "{v:?}");
        assert!(v[0].to_string().contains("at least 8 characters"));
    }

    #[test]
    fn numeric_passwords_fail() {
        let v = check("84019275361").unwrap_err();
        assert!(v.contains(&PolicyViolation::EntirelyNumeric), "{v:?}");
    }

    #[test]
    fn passwords_like_the_user_fail() {
        for pw in ["Alice-2024-zebra!", "SMITH", "xx.ALICE.SMITH@example.comxx"] {
            let v = check(pw).unwrap_err();
            assert!(
                v.contains(&PolicyViolation::TooSimilarToUserInputs),
                "{pw}: {v:?}"
            );
        }
        // The e-mail's local part counts on its own.
        let v = PasswordPolicy::default()
            .check("bob.jones.1999", &["bob", "bob.jones@example.com"])
            .unwrap_err();
        assert!(v.contains(&PolicyViolation::TooSimilarToUserInputs));
        // Very short attributes do not make everything "similar".
        assert_eq!(
            PasswordPolicy::default().check("correct horse battery staple", &["or"]),
            Ok(())
        );
    }

    #[test]
    fn common_passwords_fail_with_a_reason() {
        for pw in ["password", "password1", "qwertyuiop", "iloveyou1"] {
            let v = check(pw).unwrap_err();
            let weak = v
                .iter()
                .find(|v| matches!(v, PolicyViolation::TooWeak { .. }))
                .unwrap_or_else(|| panic!("{pw}: {v:?}"));
            assert!(weak.to_string().starts_with("This password is too common"));
        }
        let v = check("password").unwrap_err();
        assert!(
            v.iter()
                .any(|v| matches!(v, PolicyViolation::TooWeak { warning: Some(_) })),
            "zxcvbn explains why: {v:?}"
        );
    }

    #[test]
    fn overlong_passwords_fail_alone() {
        let long = "a".repeat(DEFAULT_MAX_LENGTH + 1);
        assert_eq!(
            check(&long),
            Err(vec![PolicyViolation::TooLong { max_bytes: 4096 }])
        );
        // At the limit the length rule passes (the bytes are counted, not characters).
        let at_limit: String = "vG7#pq2!Lm9zW".chars().cycle().take(4096).collect();
        assert_eq!(check(&at_limit), Ok(()));
        let multibyte = "é".repeat(2049);
        assert_eq!(
            check(&multibyte),
            Err(vec![PolicyViolation::TooLong { max_bytes: 4096 }])
        );
    }

    #[test]
    fn messages_do_not_repeat_the_password() {
        for v in check("password").unwrap_err() {
            assert!(!v.to_string().contains("password\""));
        }
    }

    #[test]
    fn empty_password_is_short_and_weak() {
        let v = check("").unwrap_err();
        assert!(v.contains(&PolicyViolation::TooShort { min: 8 }));
        assert!(!v.contains(&PolicyViolation::EntirelyNumeric));
    }
}
