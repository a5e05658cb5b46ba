//! The password policy: what a new password must satisfy, modelled on Django's validators
//! (`MinimumLengthValidator`, `NumericPasswordValidator`, `UserAttributeSimilarityValidator`,
//! `CommonPasswordValidator`), with zxcvbn's strength estimate on top, since zxcvbn also
//! catches keyboard walks, dates, l33t spellings and dictionary words with digits appended.
//!
//! # Rules
//! Each rule is configured by one field of [`PasswordPolicy`]; [`PasswordPolicy::default`]
//! gives the values below.
//!
//! | Rule | Field | Default |
//! |---|---|---|
//! | minimum length, in characters (Unicode scalar values, as Python's `len`) | `min_length` | [`DEFAULT_MIN_LENGTH`] (10) |
//! | maximum length, in bytes of UTF-8; checked first and alone | `max_length` | [`DEFAULT_MAX_LENGTH`] (1,024) |
//! | not entirely numeric | `forbid_numeric` | on |
//! | not too similar to the user's attributes (Django's rule, exactly) | `max_similarity` | [`DEFAULT_MAX_SIMILARITY`] (0.7) |
//! | not in the administrator's list of common passwords | `common_passwords` | none |
//! | at least N words of the EFF large word list | `min_words` | 0 (off) |
//! | a minimum zxcvbn score, 0–4 | `min_strength` | [`DEFAULT_MIN_STRENGTH`] (3) |
//! | not in a local copy of Have I Been Pwned's Pwned Passwords | `breached` | none |
//!
//! [`PasswordPolicy::check`] reports every violation at once, worded for the person choosing
//! the password, so a form or the command line can show them all in one go;
//! [`PasswordPolicy::help_texts`] lists what the active rules ask for, to show beside the
//! form before anyone types. Messages never repeat the password.
//!
//! # No I/O here
//! The common-password list and the breached-password file live on disk, but this crate
//! opens no files: [`CommonPasswords::from_reader`] parses whatever reader the edge opened,
//! and the breach lookup is the [`BreachedPasswords`] trait, implemented over a file by
//! `palisade_store::BreachedPasswordFile`.
//!
//! # A breach lookup that fails lets the password through
//! If the breached-password file cannot be read (deleted, truncated, a disk error), the
//! check *fails open*: that one rule is skipped and [`PolicyOutcome::breach_check_error`]
//! carries the error so the caller can log it. The password must still pass every other
//! rule. Refusing every password change while a file is broken would lock users out of the
//! very action that protects them (changing a leaked password), and the file is an extra
//! screen on top of zxcvbn and the common list, not the only one.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::BufRead;
use std::sync::{Arc, LazyLock};

use unicode_normalization::UnicodeNormalization;

/// Minimum length in characters: 10, as issue 4 settled, above Django's 8, since every
/// extra character multiplies the work of a brute-force search.
pub const DEFAULT_MIN_LENGTH: usize = 10;
/// Upper bound in bytes. Passwords are hashed with a memory-hard function and scored by
/// zxcvbn: a megabyte "password" is a denial of service, not a credential. 1 KiB is far
/// above any passphrase a person types or a manager generates.
pub const DEFAULT_MAX_LENGTH: usize = 1024;
/// zxcvbn score 3 ("safely unguessable": about 10^10 guesses), zxcvbn's authors' level for
/// "moderate protection from offline slow-hash scenario", since a database can leak.
pub const DEFAULT_MIN_STRENGTH: u8 = 3;
/// Django's `UserAttributeSimilarityValidator` default.
pub const DEFAULT_MAX_SIMILARITY: f64 = 0.7;
/// Django refuses a `max_similarity` below this: every password would be "similar".
pub const MIN_MAX_SIMILARITY: f64 = 0.1;
/// The passphrase rule is off unless the operator asks for it.
pub const DEFAULT_MIN_WORDS: usize = 0;
/// bcrypt reads at most this many bytes of a password and ignores the rest.
pub const BCRYPT_MAX_BYTES: usize = 72;
/// zxcvbn only looks at this many characters. Its matchers are quadratic in the length, and
/// appending characters never makes a password weaker, so a prefix gives a lower bound on
/// the strength at bounded cost (zxcvbn-ts truncates the same way).
const STRENGTH_PREFIX_CHARS: usize = 256;
/// zxcvbn's highest score.
const MAX_ZXCVBN_SCORE: u8 = 4;

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
    /// Found in the administrator's list of common passwords.
    Common,
    /// Fewer than `min` distinct words of the EFF large word list.
    TooFewWords {
        min: usize,
    },
    /// zxcvbn scored it below the minimum; `warning` is zxcvbn's explanation, if it has one.
    TooWeak {
        warning: Option<String>,
    },
    /// Found in the breached-password file.
    Breached,
}

impl PolicyViolation {
    /// A stable machine-readable code: Django's where Django has the rule, so API clients
    /// and translations written for Django keep working.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooShort { .. } => "password_too_short",
            Self::TooLong { .. } => "password_too_long",
            Self::EntirelyNumeric => "password_entirely_numeric",
            Self::TooSimilarToUserInputs => "password_too_similar",
            Self::Common => "password_too_common",
            Self::TooFewWords { .. } => "password_too_few_words",
            Self::TooWeak { .. } => "password_too_weak",
            Self::Breached => "password_breached",
        }
    }
}

/// `word` or its plural, as Django's `ngettext` picks.
fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

impl fmt::Display for PolicyViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { min } => write!(
                f,
                "This password is too short. It must contain at least {min} {}.",
                plural(*min, "character", "characters")
            ),
            Self::TooLong { max_bytes } => write!(
                f,
                "This password is too long. It must contain at most {max_bytes} {} \
                 (a character outside plain ASCII takes 2 to 4 bytes).",
                plural(*max_bytes, "byte", "bytes")
            ),
            Self::EntirelyNumeric => f.write_str("This password is entirely numeric."),
            Self::TooSimilarToUserInputs => {
                f.write_str("This password is too similar to the username, e-mail address or name.")
            }
            Self::Common => f.write_str("This password is too common."),
            Self::TooFewWords { min } => write!(
                f,
                "This password must contain at least {min} different {} from the word list, \
                 separated by spaces, digits or punctuation.",
                plural(*min, "word", "words")
            ),
            Self::TooWeak { warning: None } => {
                f.write_str("This password is too common or too easy to guess.")
            }
            Self::TooWeak {
                warning: Some(warning),
            } => write!(
                f,
                "This password is too common or too easy to guess: {warning}"
            ),
            Self::Breached => f.write_str(
                "This password has appeared in a data breach, so attackers try it early. \
                 Choose a different one.",
            ),
        }
    }
}

/// The administrator's list of common passwords, compared as Django's
/// `CommonPasswordValidator` compares them: `password.lower().strip()` must not be in the
/// list. Entries are lower-cased and stripped the same way when loaded (Django requires the
/// file to be lower-case already; doing it here means a mixed-case list still works), and
/// blank lines are skipped.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CommonPasswords {
    set: HashSet<String>,
}

/// Reading a common-password list failed. Lines are numbered from 1; the caller adds the
/// file name, which this crate never sees.
#[derive(Debug, thiserror::Error)]
pub enum CommonPasswordsError {
    #[error("line {line} is not valid UTF-8")]
    NotUtf8 { line: usize },
    #[error("reading line {line}: {source}")]
    Read {
        line: usize,
        #[source]
        source: std::io::Error,
    },
}

impl CommonPasswords {
    /// One password per line (LF or CRLF), UTF-8. A leading byte-order mark is ignored, so
    /// a list saved by a Windows editor loads as written.
    pub fn from_reader(mut reader: impl BufRead) -> Result<Self, CommonPasswordsError> {
        let mut set = HashSet::new();
        let mut buf = Vec::new();
        let mut line = 0usize;
        loop {
            buf.clear();
            let read = reader.read_until(b'\n', &mut buf).map_err(|source| {
                CommonPasswordsError::Read {
                    line: line.saturating_add(1),
                    source,
                }
            })?;
            if read == 0 {
                break;
            }
            line = line.saturating_add(1);
            let text =
                std::str::from_utf8(&buf).map_err(|_| CommonPasswordsError::NotUtf8 { line })?;
            let text = if line == 1 {
                text.strip_prefix('\u{feff}').unwrap_or(text)
            } else {
                text
            };
            let entry = normalize_common(text);
            if !entry.is_empty() {
                set.insert(entry);
            }
        }
        Ok(Self { set })
    }

    /// Whether `password`, lower-cased and stripped, is in the list.
    pub fn contains(&self, password: &str) -> bool {
        self.set.contains(&normalize_common(password))
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

impl<S: AsRef<str>> FromIterator<S> for CommonPasswords {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let set = iter
            .into_iter()
            .map(|s| normalize_common(s.as_ref()))
            .filter(|s| !s.is_empty())
            .collect();
        Self { set }
    }
}

impl fmt::Debug for CommonPasswords {
    /// The count only: the list can hold millions of entries.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommonPasswords")
            .field("len", &self.set.len())
            .finish()
    }
}

/// Python's `s.lower().strip()`. Python's `str.isspace` is Rust's `char::is_whitespace`
/// plus the four ASCII information separators U+001C–U+001F, so those are stripped too.
fn normalize_common(s: &str) -> String {
    s.to_lowercase()
        .trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
        .to_owned()
}

/// A breached-password lookup could not be done (the file is unreadable or corrupt). The
/// policy fails open on it: see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not check the breached-password list: {reason}")]
pub struct BreachCheckError {
    reason: String,
}

impl BreachCheckError {
    /// `reason` is shown to operators in logs: name the file, never the password or hash.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// A set of breached passwords, looked up by the SHA-1 of the password's UTF-8 bytes (no
/// normalisation, no case folding: the convention of Have I Been Pwned's Pwned Passwords).
pub trait BreachedPasswords: fmt::Debug + Send + Sync {
    fn is_breached(&self, sha1: &[u8; 20]) -> Result<bool, BreachCheckError>;
}

/// The rules a new password must meet. Build one with struct-update syntax from
/// [`Default`], then call [`PasswordPolicy::validate_settings`] once when the configuration
/// is loaded.
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    /// Minimum length in characters (Unicode scalar values, as Python's `len`, so a letter
    /// written with a combining accent counts as two). 0 turns the rule off.
    pub min_length: usize,
    /// Maximum length in bytes of UTF-8. Always on: it bounds the cost of every other rule
    /// and of hashing.
    pub max_length: usize,
    /// Refuse passwords made only of digits.
    pub forbid_numeric: bool,
    /// Django's `max_similarity` for the user-attribute rule; `None` turns it off.
    pub max_similarity: Option<f64>,
    /// Minimum zxcvbn score, 0–4. 0 turns the estimate off.
    pub min_strength: u8,
    /// Minimum number of distinct EFF large word list words (see [`count_list_words`]).
    /// 0 turns the rule off.
    pub min_words: usize,
    /// The administrator's list of common passwords.
    pub common_passwords: Option<Arc<CommonPasswords>>,
    /// A local copy of a breached-password corpus.
    pub breached: Option<Arc<dyn BreachedPasswords>>,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: DEFAULT_MIN_LENGTH,
            max_length: DEFAULT_MAX_LENGTH,
            forbid_numeric: true,
            max_similarity: Some(DEFAULT_MAX_SIMILARITY),
            min_strength: DEFAULT_MIN_STRENGTH,
            min_words: DEFAULT_MIN_WORDS,
            common_passwords: None,
            breached: None,
        }
    }
}

/// A setting that would make the policy refuse every password, or that Django refuses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyConfigError {
    #[error("max_similarity must be at least {MIN_MAX_SIMILARITY} (got {0})")]
    SimilarityTooLow(f64),
    #[error("min_strength must be 0 to {MAX_ZXCVBN_SCORE} (got {0})")]
    StrengthOutOfRange(u8),
    #[error(
        "max_length ({max_length} bytes) is below min_length ({min_length} characters): \
         no password could pass"
    )]
    MaxBelowMin {
        min_length: usize,
        max_length: usize,
    },
}

/// What [`PasswordPolicy::evaluate`] found.
#[derive(Debug)]
#[must_use]
pub struct PolicyOutcome {
    /// Every rule the password breaks; empty when it is accepted.
    pub violations: Vec<PolicyViolation>,
    /// Set when the breached-password lookup failed and that rule was skipped (fail open);
    /// log it, since until the file is fixed breached passwords get through.
    pub breach_check_error: Option<BreachCheckError>,
}

impl PolicyOutcome {
    pub fn is_accepted(&self) -> bool {
        self.violations.is_empty()
    }

    /// The violations as a `Result`, dropping any breach-check error.
    pub fn into_result(self) -> Result<(), Vec<PolicyViolation>> {
        if self.violations.is_empty() {
            Ok(())
        } else {
            Err(self.violations)
        }
    }
}

impl PasswordPolicy {
    /// Checks `password` against every rule. `user_inputs` are the account's own attributes
    /// (username, e-mail address, names): a password too similar to them is refused, and
    /// zxcvbn counts them as dictionary words.
    ///
    /// A failed breached-password lookup is dropped here; when [`Self::breached`] is set,
    /// call [`Self::evaluate`] instead so the failure can be logged.
    pub fn check(&self, password: &str, user_inputs: &[&str]) -> Result<(), Vec<PolicyViolation>> {
        self.evaluate(password, user_inputs).into_result()
    }

    /// Checks `password` against every rule, and also reports a breached-password lookup
    /// that could not be done.
    pub fn evaluate(&self, password: &str, user_inputs: &[&str]) -> PolicyOutcome {
        // The length cap comes first and alone: nothing else runs on an oversized input.
        if password.len() > self.max_length {
            return PolicyOutcome {
                violations: vec![PolicyViolation::TooLong {
                    max_bytes: self.max_length,
                }],
                breach_check_error: None,
            };
        }
        let mut violations = Vec::new();
        if password.chars().count() < self.min_length {
            violations.push(PolicyViolation::TooShort {
                min: self.min_length,
            });
        }
        if self.forbid_numeric && is_entirely_numeric(password) {
            violations.push(PolicyViolation::EntirelyNumeric);
        }
        if let Some(max_similarity) = self.max_similarity
            && is_too_similar(password, user_inputs, max_similarity)
        {
            violations.push(PolicyViolation::TooSimilarToUserInputs);
        }
        if let Some(list) = &self.common_passwords
            && list.contains(password)
        {
            violations.push(PolicyViolation::Common);
        }
        if self.min_words > 0 && count_list_words(password) < self.min_words {
            violations.push(PolicyViolation::TooFewWords {
                min: self.min_words,
            });
        }
        if self.min_strength > 0 {
            let prefix: String = password.chars().take(STRENGTH_PREFIX_CHARS).collect();
            let inputs = zxcvbn_inputs(user_inputs);
            let input_refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
            let estimate = zxcvbn::zxcvbn(&prefix, &input_refs);
            if u8::from(estimate.score()) < self.min_strength {
                let warning = estimate
                    .feedback()
                    .and_then(zxcvbn::feedback::Feedback::warning)
                    .map(|w| w.to_string());
                violations.push(PolicyViolation::TooWeak { warning });
            }
        }
        let mut breach_check_error = None;
        if let Some(breached) = &self.breached {
            match sha1(password).and_then(|digest| breached.is_breached(&digest)) {
                Ok(true) => violations.push(PolicyViolation::Breached),
                Ok(false) => {}
                Err(e) => breach_check_error = Some(e),
            }
        }
        PolicyOutcome {
            violations,
            breach_check_error,
        }
    }

    /// One sentence per active rule, in the order [`Self::check`] applies them, for a form
    /// to show before anyone types (Django's `password_validators_help_texts`).
    pub fn help_texts(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.min_length > 0 {
            out.push(format!(
                "Your password must contain at least {} {}.",
                self.min_length,
                plural(self.min_length, "character", "characters")
            ));
        }
        out.push(format!(
            "Your password can't be longer than {} {} (a character outside plain ASCII \
             takes 2 to 4 bytes).",
            self.max_length,
            plural(self.max_length, "byte", "bytes")
        ));
        if self.forbid_numeric {
            out.push("Your password can't be entirely numeric.".to_owned());
        }
        if self.max_similarity.is_some() {
            out.push(
                "Your password can't be too similar to your other personal information.".to_owned(),
            );
        }
        if self.common_passwords.is_some() {
            out.push("Your password can't be a commonly used password.".to_owned());
        }
        if self.min_words > 0 {
            out.push(format!(
                "Your password must contain at least {} different {} from the EFF word list, \
                 separated by spaces, digits or punctuation.",
                self.min_words,
                plural(self.min_words, "word", "words")
            ));
        }
        if self.min_strength > 0 {
            out.push(
                "Your password must be hard to guess: avoid common words, names, dates, \
                 keyboard patterns and predictable substitutions."
                    .to_owned(),
            );
        }
        if self.breached.is_some() {
            out.push(
                "Your password can't be one that has appeared in a known data breach.".to_owned(),
            );
        }
        out
    }

    /// Rejects settings that Django rejects or under which no password could pass. Call it
    /// once when the configuration is loaded; [`Self::check`] does not repeat it.
    pub fn validate_settings(&self) -> Result<(), PolicyConfigError> {
        if let Some(s) = self.max_similarity
            && (s.is_nan() || s < MIN_MAX_SIMILARITY)
        {
            return Err(PolicyConfigError::SimilarityTooLow(s));
        }
        if self.min_strength > MAX_ZXCVBN_SCORE {
            return Err(PolicyConfigError::StrengthOutOfRange(self.min_strength));
        }
        // Each character takes at least one byte.
        if self.max_length < self.min_length {
            return Err(PolicyConfigError::MaxBelowMin {
                min_length: self.min_length,
                max_length: self.max_length,
            });
        }
        Ok(())
    }
}

/// A warning (not a refusal) for passwords that plain bcrypt would cut: it hashes only the
/// first [`BCRYPT_MAX_BYTES`] bytes, so everything after them adds nothing. Pass
/// `hasher_truncates` = true only for plain `bcrypt`; `bcrypt_sha256` (what Palisade writes
/// when bcrypt is configured) hashes a SHA-256 of the whole password and is not affected.
pub fn bcrypt_truncation_warning(password: &str, hasher_truncates: bool) -> Option<&'static str> {
    (hasher_truncates && password.len() > BCRYPT_MAX_BYTES).then_some(
        "Only the first 72 bytes of this password are used: the bcrypt password hasher \
         ignores the rest.",
    )
}

/// Django's `password.isdigit()`, a little wider: `char::is_numeric` also counts fractions
/// and Roman numerals (Unicode `No` and `Nl`), which only refuses more all-number passwords.
/// The empty password is not numeric, as in Python.
fn is_entirely_numeric(password: &str) -> bool {
    !password.is_empty() && password.chars().all(char::is_numeric)
}

/// Python's `\w` for `str` patterns is `str.isalnum()` or `_`. `char::is_alphanumeric`
/// differs only on the few combining marks Unicode lists as Other_Alphabetic (Indic vowel
/// signs, for instance), where Python splits and this does not.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Python's `re.split(r"\W+", value)`: like `split`, but a run of separators yields one
/// cut, while a separator at either end still yields an empty first or last part.
fn split_non_word(value: &str) -> Vec<&str> {
    let pieces: Vec<&str> = value.split(|c| !is_word_char(c)).collect();
    let last = pieces.len().saturating_sub(1);
    pieces
        .into_iter()
        .enumerate()
        .filter(|(i, p)| !p.is_empty() || *i == 0 || *i == last)
        .map(|(_, p)| p)
        .collect()
}

/// Django 5.2's `UserAttributeSimilarityValidator.validate`, step for step: lower-case the
/// password; for each non-empty attribute, lower-case it, split it on `\W+` and add the
/// whole value; skip a part that is far shorter than the password
/// (`exceeds_maximum_length_ratio`); the password is too similar if
/// `SequenceMatcher(a=password, b=part).quick_ratio() >= max_similarity`.
///
/// Django uses `quick_ratio` alone, not `ratio`: the upper bound, so it refuses at least
/// everything `ratio` would. Float arithmetic is done in the same order as CPython's, so the
/// decisions are the same bit for bit.
fn is_too_similar(password: &str, user_inputs: &[&str], max_similarity: f64) -> bool {
    let password = password.to_lowercase();
    let password_len = password.chars().count();
    user_inputs.iter().filter(|v| !v.is_empty()).any(|value| {
        let value = value.to_lowercase();
        let mut parts = split_non_word(&value);
        parts.push(&value);
        parts.into_iter().any(|part| {
            !exceeds_maximum_length_ratio(password_len, max_similarity, part.chars().count())
                && quick_ratio(&password, part) >= max_similarity
        })
    })
}

/// Django's `exceeds_maximum_length_ratio`: a part at most a tenth of the password's length
/// and shorter than `max_similarity / 2 × len(password)` cannot reach the threshold, so it is
/// not compared at all.
fn exceeds_maximum_length_ratio(
    password_len: usize,
    max_similarity: f64,
    value_len: usize,
) -> bool {
    let length_bound_similarity = max_similarity / 2.0 * password_len as f64;
    password_len >= value_len.saturating_mul(10) && (value_len as f64) < length_bound_similarity
}

/// Python's `difflib.SequenceMatcher(a=a, b=b).quick_ratio()` over code points.
fn quick_ratio(a: &str, b: &str) -> f64 {
    let (matches, length) = quick_ratio_parts(a, b);
    calculate_ratio(matches, length)
}

/// `quick_ratio`'s numerator and denominator: the size of the multiset intersection of the
/// two strings' characters, and the sum of their lengths. Junk and `autojunk` do not enter:
/// CPython's `quick_ratio` counts every element of `b`.
fn quick_ratio_parts(a: &str, b: &str) -> (usize, usize) {
    let mut available: HashMap<char, usize> = HashMap::new();
    let mut b_len = 0usize;
    for c in b.chars() {
        *available.entry(c).or_default() += 1;
        b_len += 1;
    }
    let mut matches = 0usize;
    let mut a_len = 0usize;
    for c in a.chars() {
        a_len += 1;
        if let Some(n) = available.get_mut(&c)
            && *n > 0
        {
            *n -= 1;
            matches += 1;
        }
    }
    (matches, a_len.saturating_add(b_len))
}

/// difflib's `_calculate_ratio`: `2.0 * matches / length`, and 1.0 for two empty sequences.
fn calculate_ratio(matches: usize, length: usize) -> f64 {
    if length == 0 {
        1.0
    } else {
        2.0 * matches as f64 / length as f64
    }
}

/// Lower-cased user inputs and their `\W+` parts, deduplicated, as zxcvbn dictionary words:
/// `alice.smith@example.com` also gives `alice` and `smith`.
fn zxcvbn_inputs(user_inputs: &[&str]) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for value in user_inputs {
        let value = value.to_lowercase();
        for part in split_non_word(&value).into_iter().chain([value.as_str()]) {
            if !part.is_empty() && seen.insert(part.to_owned()) {
                out.push(part.to_owned());
            }
        }
    }
    out
}

static WORD_LIST: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    palisade_crypto::random::eff_large_wordlist()
        .iter()
        .copied()
        .collect()
});

/// How many distinct words of the EFF large word list (the list `palisade random
/// passphrase` draws from) `password` contains.
///
/// Words are found this way: the password is NFC-normalised (so an accent typed as a
/// combining mark stays inside its word) and lower-cased; a word is a maximal run of
/// letters (Unicode alphabetic characters), and everything else (spaces, digits,
/// punctuation, symbols) separates words. A hyphen also separates words, except that a run
/// like `t-shirt` that is itself a list word counts as that one word (4 list words contain
/// a hyphen: drop-down, felt-tip, t-shirt, yo-yo). Letters run together without a separator
/// (`correcthorse`) are one token, not two words. A word used twice counts once: repeating a
/// word adds almost no strength.
pub fn count_list_words(password: &str) -> usize {
    let normalized = password.nfc().collect::<String>().to_lowercase();
    let mut found = HashSet::new();
    for token in normalized.split(|c: char| !(c.is_alphabetic() || c == '-')) {
        let token = token.trim_matches('-');
        if token.is_empty() {
            continue;
        }
        if WORD_LIST.contains(token) {
            found.insert(token);
            continue;
        }
        for part in token.split('-') {
            if WORD_LIST.contains(part) {
                found.insert(part);
            }
        }
    }
    found.len()
}

/// SHA-1 of the password's UTF-8 bytes, the key of Have I Been Pwned's corpus.
fn sha1(password: &str) -> Result<[u8; 20], BreachCheckError> {
    let digest =
        palisade_crypto::hash::hash(palisade_crypto::hash::Algorithm::Sha1, password.as_bytes());
    <[u8; 20]>::try_from(digest.as_slice())
        .map_err(|_| BreachCheckError::new("SHA-1 did not produce 20 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    const USER: [&str; 2] = ["alice", "alice.smith@example.com"];

    fn check(pw: &str) -> Result<(), Vec<PolicyViolation>> {
        PasswordPolicy::default().check(pw, &USER)
    }

    fn violations(policy: &PasswordPolicy, pw: &str, inputs: &[&str]) -> Vec<PolicyViolation> {
        policy.check(pw, inputs).err().unwrap_or_default()
    }

    #[test]
    fn defaults_are_the_issue_values() {
        let p = PasswordPolicy::default();
        assert_eq!(p.min_length, 10);
        assert_eq!(p.max_length, 1024);
        assert_eq!(p.min_strength, 3);
        assert_eq!(p.max_similarity, Some(0.7));
        assert_eq!(p.min_words, 0);
        assert!(p.forbid_numeric);
        assert!(p.common_passwords.is_none() && p.breached.is_none());
        assert_eq!(p.validate_settings(), Ok(()));
    }

    #[test]
    fn strong_passwords_pass() {
        for pw in [
            "correct horse battery staple",
            "Tr0ub4dor&3-kayak-Quartz",
            "correct horse battery staple 9",
            "vG7#pq2!Lm9zW",
            "correct horse 電池 staple",
            "Пароль-Кузнечик-Пельмень-42",
        ] {
            assert_eq!(check(pw), Ok(()), "{pw}");
        }
    }

    #[test]
    fn short_passwords_fail_counting_characters_not_bytes() {
        let v = check("x7#Qp").unwrap_err();
        assert!(v.contains(&PolicyViolation::TooShort { min: 10 }), "{v:?}");
        assert!(v[0].to_string().contains("at least 10 characters"));
        let lenient = PasswordPolicy {
            min_strength: 0,
            ..PasswordPolicy::default()
        };
        // "пароль" is 6 characters but 12 bytes: short.
        assert!(
            violations(&lenient, "пароль", &[]).contains(&PolicyViolation::TooShort { min: 10 })
        );
        // 10 Cyrillic characters pass the length rule.
        assert!(
            !violations(&lenient, "парольпаро", &[])
                .contains(&PolicyViolation::TooShort { min: 10 })
        );
        // A combining accent is a character of its own, as in Python's len(): "é" typed as
        // e + U+0301 takes two of the ten.
        let nine_letters = "cafe\u{301}tasse"; // 10 chars, 9 letters
        assert_eq!(nine_letters.chars().count(), 10);
        assert!(
            !violations(&lenient, nine_letters, &[])
                .contains(&PolicyViolation::TooShort { min: 10 })
        );
        assert!(
            violations(&lenient, "caf\u{e9}tasse", &[])
                .contains(&PolicyViolation::TooShort { min: 10 })
        );
    }

    #[test]
    fn singular_messages_read_correctly() {
        assert_eq!(
            PolicyViolation::TooShort { min: 1 }.to_string(),
            "This password is too short. It must contain at least 1 character."
        );
        assert!(
            PolicyViolation::TooFewWords { min: 1 }
                .to_string()
                .contains("at least 1 different word from")
        );
    }

    #[test]
    fn numeric_passwords_fail_unless_allowed() {
        let v = check("84019275361").unwrap_err();
        assert!(v.contains(&PolicyViolation::EntirelyNumeric), "{v:?}");
        // Other scripts' digits are digits too (Python's isdigit agrees).
        let v = check("٨٤٠١٩٢٧٥٣٦١").unwrap_err();
        assert!(v.contains(&PolicyViolation::EntirelyNumeric), "{v:?}");
        let off = PasswordPolicy {
            forbid_numeric: false,
            ..PasswordPolicy::default()
        };
        assert!(!violations(&off, "84019275361", &[]).contains(&PolicyViolation::EntirelyNumeric));
        assert!(
            !violations(&PasswordPolicy::default(), "8401927536a", &[])
                .contains(&PolicyViolation::EntirelyNumeric)
        );
    }

    /// Decisions of Django 5.2.19's `UserAttributeSimilarityValidator` (default
    /// `max_similarity` 0.7), computed once by running it on these inputs.
    const DJANGO_SIMILARITY: &[(&str, &[&str], bool)] = &[
        ("alice", &["alice", "alice.smith@example.com"], true),
        (
            "Alice-2024-zebra!",
            &["alice", "alice.smith@example.com"],
            false,
        ),
        ("SMITH", &["alice", "alice.smith@example.com"], true),
        ("smith.alice", &["alice", "alice.smith@example.com"], false),
        ("alicesmith1", &["alice", "alice.smith@example.com"], false),
        (
            "alice.smith@example.org",
            &["alice", "alice.smith@example.com"],
            true,
        ),
        (
            "correct horse battery staple",
            &["alice", "alice.smith@example.com"],
            false,
        ),
        ("dave-was-here-2024", &["dave", "dave@example.com"], false),
        ("dave@example.com", &["dave", "dave@example.com"], true),
        ("example-dave", &["dave", "dave@example.com"], true),
        ("davedave", &["dave", "dave@example.com"], false),
        (
            "Tr0ub4dor&3-kayak-Quartz",
            &["alice", "alice.smith@example.com"],
            false,
        ),
        // 102 characters against a 1-character attribute: skipped by the length ratio.
        (
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            &["a"],
            false,
        ),
        ("aaaaaaaaaa", &["a"], false),
        ("aaaaaaaaaaa", &["a"], false),
        ("abcdefghij", &["ab"], false),
        ("ab", &["abc"], true),
        ("пароль-иван", &["иван", "ivan@example.com"], false),
        ("иван.петров", &["Иван", "ivan.petrov@example.com"], false),
        ("ИВАНПЕТРОВ", &["иван_петров"], true),
        // A combining accent is \W: "jose\u{301}" splits into "jose" and "".
        ("jos\u{e9}", &["jose\u{301}"], true),
        ("jose", &["Jos\u{e9}"], true),
        ("電池電池", &["電池"], false),
        // "alice." splits into "alice" and "": an empty password equals the empty part.
        ("", &["alice."], true),
        ("", &["alice"], false),
        ("x", &["-"], false),
        ("qqqqqqqqqqqqqqqqqqqqqq", &["q-w"], false),
        ("bob.jones.1999", &["bob", "bob.jones@example.com"], false),
        ("moc.elpmaxe@ecila", &["alice.smith@example.com"], true),
    ];

    #[test]
    fn similarity_matches_django_decisions() {
        for (pw, inputs, similar) in DJANGO_SIMILARITY {
            assert_eq!(
                is_too_similar(pw, inputs, DEFAULT_MAX_SIMILARITY),
                *similar,
                "{pw:?} vs {inputs:?}"
            );
        }
    }

    #[test]
    fn similar_passwords_are_refused_and_the_rule_can_be_turned_off() {
        let v = check("Alice.Smith@example.org").unwrap_err();
        assert!(
            v.contains(&PolicyViolation::TooSimilarToUserInputs),
            "{v:?}"
        );
        assert!(v.iter().any(|v| v.to_string().contains("too similar")));
        let off = PasswordPolicy {
            max_similarity: None,
            ..PasswordPolicy::default()
        };
        assert!(
            !violations(&off, "Alice.Smith@example.org", &USER)
                .contains(&PolicyViolation::TooSimilarToUserInputs)
        );
        // A stricter threshold catches what 0.7 lets through ("smith.alice" is 0.647).
        let strict = PasswordPolicy {
            max_similarity: Some(0.6),
            ..PasswordPolicy::default()
        };
        assert!(
            violations(&strict, "smith.alice", &USER)
                .contains(&PolicyViolation::TooSimilarToUserInputs)
        );
    }

    #[test]
    fn user_inputs_are_compared_as_django_does() {
        // Every attribute counts, and so does each \W+ part of it.
        let inputs = ["bob", "Robert", "Jones", "bob.jones@example.com"];
        for pw in ["robert-x", "JONESY", "BOB.JONES@EXAMPLE.NET", "bob.jones"] {
            assert!(is_too_similar(pw, &inputs, 0.7), "{pw}");
        }
        // Django's ratio is a similarity, not containment: an attribute inside a longer
        // password passes this rule (and is left to zxcvbn, which gets the attributes as
        // dictionary words).
        assert!(!is_too_similar("Alice-2024-zebra!", &USER, 0.7));
        // No attributes, nothing to be similar to.
        assert!(!is_too_similar("alice", &[], 0.7));
        assert!(!is_too_similar("alice", &[""], 0.7));
    }

    /// `(a, b, matches, len(a) + len(b), repr(quick_ratio))`, from CPython 3.11's difflib.
    const PYTHON_QUICK_RATIO: &[(&str, &str, usize, usize, &str)] = &[
        ("", "", 0, 0, "1.0"),
        ("a", "", 0, 1, "0.0"),
        ("", "abc", 0, 3, "0.0"),
        ("abc", "abc", 3, 6, "1.0"),
        ("abc", "cba", 3, 6, "1.0"),
        ("aaa", "a", 1, 4, "0.5"),
        ("a", "aaa", 1, 4, "0.5"),
        ("password", "passw0rd", 7, 16, "0.875"),
        ("alice.smith", "alice", 5, 16, "0.625"),
        (
            "dave-was-here-2024",
            "dave@example.com",
            7,
            34,
            "0.4117647058823529",
        ),
        ("mississippi", "misp", 4, 15, "0.5333333333333333"),
        ("пароль", "парол", 5, 11, "0.9090909090909091"),
        ("jos\u{e9}", "jose\u{301}", 3, 9, "0.6666666666666666"),
        ("電池電池", "電池", 2, 6, "0.6666666666666666"),
        (
            "correct horse 電池 staple",
            "horse",
            5,
            28,
            "0.35714285714285715",
        ),
        ("ÅÅå", "å", 1, 4, "0.5"),
        ("abcabcabc", "cabbage", 5, 16, "0.625"),
    ];

    #[test]
    fn quick_ratio_equals_pythons() {
        for (a, b, matches, length, repr) in PYTHON_QUICK_RATIO {
            assert_eq!(quick_ratio_parts(a, b), (*matches, *length), "{a:?} {b:?}");
            let expected: f64 = repr.parse().unwrap();
            assert_eq!(
                quick_ratio(a, b).to_bits(),
                expected.to_bits(),
                "{a:?} {b:?}"
            );
        }
        // Beyond 200 elements difflib's autojunk marks popular characters of b as junk for
        // ratio(), but quick_ratio() still counts them: x*300 vs x*150 + y*50 is 150/500.
        let a = "x".repeat(300);
        let b = format!("{}{}", "x".repeat(150), "y".repeat(50));
        assert_eq!(quick_ratio_parts(&a, &b), (150, 500));
        assert_eq!(quick_ratio(&a, &b), 0.6);
    }

    /// Tiny deterministic generator so the cross-check covers many inputs reproducibly.
    fn splitmix(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Cross-checks quick_ratio against the python3 on this machine, when there is one, on
    /// generated pairs over a small alphabet (so characters repeat and overlap) with
    /// non-ASCII letters and combining marks.
    #[test]
    fn quick_ratio_equals_live_python_difflib() {
        let alphabet: Vec<char> = "abcAB.-_ 1éе電\u{301}".chars().collect();
        let mut state = 7u64;
        let mut pairs = Vec::new();
        for _ in 0..400 {
            let gen_str = |state: &mut u64| -> String {
                let len = (splitmix(state) % 24) as usize;
                (0..len)
                    .map(|_| alphabet[(splitmix(state) % alphabet.len() as u64) as usize])
                    .collect()
            };
            let a = gen_str(&mut state);
            let b = gen_str(&mut state);
            pairs.push((a, b));
        }
        let script = "import difflib, json, struct, sys\n\
                      pairs = json.load(sys.stdin)\n\
                      print(json.dumps([struct.unpack('<Q', struct.pack('<d', \
                      difflib.SequenceMatcher(a=a, b=b).quick_ratio()))[0] for a, b in pairs]))";
        let child = std::process::Command::new("python3")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn();
        let Ok(mut child) = child else {
            eprintln!("python3 not found: live difflib cross-check skipped");
            return;
        };
        let input = serde_json::to_vec(&pairs).unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), &input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The bit patterns, not decimal text: serde_json's default float parsing is not
        // always correctly rounded, and this comparison must be exact.
        let ratios: Vec<u64> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(ratios.len(), pairs.len());
        for ((a, b), expected) in pairs.iter().zip(ratios) {
            assert_eq!(quick_ratio(a, b).to_bits(), expected, "{a:?} {b:?}");
        }
    }

    #[test]
    fn split_non_word_matches_python_re_split() {
        // Expected values from Python's re.split(r"\W+", s).
        for (s, parts) in [
            (
                "alice.smith@example.com",
                &["alice", "smith", "example", "com"][..],
            ),
            ("-a--b-", &["", "a", "b", ""]),
            ("---", &["", ""]),
            ("a", &["a"]),
            ("", &[""]),
            ("иван_петров", &["иван_петров"]),
            ("jose\u{301}", &["jose", ""]),
            ("x 電池·y", &["x", "電池", "y"]),
        ] {
            assert_eq!(split_non_word(s), parts, "{s:?}");
        }
    }

    #[test]
    fn common_list_is_compared_lowercased_and_stripped() {
        let list = CommonPasswords::from_reader(
            "\u{feff}Summer2024!\r\n  letmein-please  \n\n\tMonkeyBusiness99\nпароль-пароль\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(list.len(), 4);
        for pw in [
            "summer2024!",
            "SUMMER2024!",
            " Summer2024! ",
            "LetMeIn-Please",
            "monkeybusiness99\u{1f}",
            "ПАРОЛЬ-ПАРОЛЬ",
        ] {
            assert!(list.contains(pw), "{pw:?}");
        }
        assert!(!list.contains("summer2024"));
        assert!(!list.contains(""), "blank lines are not entries");

        // Through the policy: a password zxcvbn likes but the administrator listed.
        let policy = PasswordPolicy {
            common_passwords: Some(Arc::new(["Tr0ub4dor&3-kayak-Quartz"].into_iter().collect())),
            ..PasswordPolicy::default()
        };
        assert_eq!(
            policy.check("tr0ub4dor&3-kayak-quartz", &[]),
            Err(vec![PolicyViolation::Common])
        );
        assert_eq!(
            PolicyViolation::Common.to_string(),
            "This password is too common."
        );
        assert_eq!(policy.check("vG7#pq2!Lm9zW", &[]), Ok(()));
    }

    #[test]
    fn common_list_reports_the_bad_line() {
        let err = CommonPasswords::from_reader(&b"fine\nalso fine\n\xff\xfe\n"[..]).unwrap_err();
        assert!(
            matches!(err, CommonPasswordsError::NotUtf8 { line: 3 }),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "line 3 is not valid UTF-8");
        // Debug shows the size, not the entries.
        let list: CommonPasswords = ["secret-one", "secret-two"].into_iter().collect();
        assert_eq!(format!("{list:?}"), "CommonPasswords { len: 2 }");
    }

    #[test]
    fn list_words_are_counted_as_documented() {
        for (pw, n) in [
            ("correct horse battery staple", 3), // "horse" is not in the EFF large list
            ("Correct-Battery-Staple", 3),
            ("correct9battery_staple!", 3),
            ("correctbatterystaple", 0),
            ("staple staple staple staple", 1),
            ("correct horse 電池 staple", 2),
            ("t-shirt yo-yo", 2),
            ("drop-down zoom", 2), // "drop-down" is a list word
            ("t-shirt-zoom", 2),   // read as t, shirt, zoom: "shirt" and "zoom" count
            ("  --abacus--zoom--  ", 2),
            ("ABACUS", 1),
        ] {
            assert_eq!(count_list_words(pw), n, "{pw:?}");
        }
        // An accent typed as a combining mark does not cut a word in two ("café" is not in
        // the list, so neither part may count): "cafe" + U+0301 + "zoom".
        assert_eq!(count_list_words("cafe\u{301} zoom"), 1);
    }

    #[test]
    fn passphrase_rule_counts_list_words() {
        let policy = PasswordPolicy {
            min_words: 4,
            ..PasswordPolicy::default()
        };
        assert_eq!(
            policy.check("vG7#pq2!Lm9zW", &[]),
            Err(vec![PolicyViolation::TooFewWords { min: 4 }])
        );
        assert_eq!(policy.check("abacus-zoom-yodel-battery", &[]), Ok(()));
        // Three distinct words, one repeated, is three.
        assert_eq!(
            policy.check("abacus zoom yodel zoom", &[]),
            Err(vec![PolicyViolation::TooFewWords { min: 4 }])
        );
        assert_eq!(policy.check("Abacus 電池 Zoom Staple Yodel", &[]), Ok(()));
    }

    #[test]
    fn common_passwords_fail_with_a_reason() {
        for pw in [
            "password",
            "password1",
            "qwertyuiop",
            "iloveyou1",
            "Password2024!",
        ] {
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
    fn score_threshold_is_configurable() {
        // A score-2 password: refused by the default (3), accepted at 2.
        let pw = "bluefish-77";
        let estimate = zxcvbn::zxcvbn(pw, &[]);
        assert_eq!(u8::from(estimate.score()), 2);
        assert!(
            violations(&PasswordPolicy::default(), pw, &[])
                .iter()
                .any(|v| matches!(v, PolicyViolation::TooWeak { .. }))
        );
        let two = PasswordPolicy {
            min_strength: 2,
            ..PasswordPolicy::default()
        };
        assert_eq!(two.check(pw, &[]), Ok(()));
    }

    #[test]
    fn overlong_passwords_fail_alone() {
        let long = "a".repeat(DEFAULT_MAX_LENGTH + 1);
        assert_eq!(
            check(&long),
            Err(vec![PolicyViolation::TooLong { max_bytes: 1024 }])
        );
        // At the limit the length rule passes (the bytes are counted, not characters).
        let at_limit: String = "vG7#pq2!Lm9zW".chars().cycle().take(1024).collect();
        assert_eq!(check(&at_limit), Ok(()));
        // 513 two-byte characters are 1,026 bytes.
        let multibyte = "é".repeat(513);
        assert_eq!(
            check(&multibyte),
            Err(vec![PolicyViolation::TooLong { max_bytes: 1024 }])
        );
        assert!(
            PolicyViolation::TooLong { max_bytes: 1024 }
                .to_string()
                .contains("at most 1024 bytes")
        );
    }

    #[test]
    fn bcrypt_warning_only_past_72_bytes_and_only_for_bcrypt() {
        let at_72 = "a".repeat(72);
        assert_eq!(bcrypt_truncation_warning(&at_72, true), None);
        let over = "a".repeat(73);
        let warning = bcrypt_truncation_warning(&over, true).unwrap();
        assert!(warning.contains("72 bytes"));
        assert!(!warning.contains(&over));
        assert_eq!(bcrypt_truncation_warning(&over, false), None);
        // 37 "é" are 37 characters but 74 bytes.
        assert!(bcrypt_truncation_warning(&"é".repeat(37), true).is_some());
        assert!(bcrypt_truncation_warning(&"é".repeat(36), true).is_none());
    }

    #[test]
    fn messages_do_not_repeat_the_password() {
        let secret = "Summer-2024-aliceSMITH";
        let policy = PasswordPolicy {
            min_length: 40,
            min_words: 3,
            common_passwords: Some(Arc::new([secret].into_iter().collect())),
            ..PasswordPolicy::default()
        };
        let v = policy.check(secret, &USER).unwrap_err();
        assert!(v.len() >= 3, "{v:?}");
        for v in v {
            let text = v.to_string().to_lowercase();
            for piece in ["summer", "2024", "alice", "smith"] {
                assert!(!text.contains(piece), "{text}");
            }
        }
    }

    #[test]
    fn empty_password_is_short_and_weak() {
        let v = check("").unwrap_err();
        assert!(v.contains(&PolicyViolation::TooShort { min: 10 }));
        assert!(!v.contains(&PolicyViolation::EntirelyNumeric));
        assert!(
            v.iter()
                .any(|v| matches!(v, PolicyViolation::TooWeak { .. }))
        );
    }

    #[test]
    fn help_texts_follow_the_active_rules() {
        let default = PasswordPolicy::default().help_texts();
        assert_eq!(
            default,
            [
                "Your password must contain at least 10 characters.",
                "Your password can't be longer than 1024 bytes (a character outside plain \
                 ASCII takes 2 to 4 bytes).",
                "Your password can't be entirely numeric.",
                "Your password can't be too similar to your other personal information.",
                "Your password must be hard to guess: avoid common words, names, dates, \
                 keyboard patterns and predictable substitutions.",
            ]
        );
        let all = PasswordPolicy {
            min_words: 5,
            common_passwords: Some(Arc::new(CommonPasswords::default())),
            breached: Some(Arc::new(FakeBreached::new(Ok(false)))),
            ..PasswordPolicy::default()
        }
        .help_texts();
        assert_eq!(all.len(), 8);
        assert!(all.iter().any(|t| t.contains("commonly used")));
        assert!(all.iter().any(|t| t.contains("at least 5 different words")));
        assert!(all.iter().any(|t| t.contains("data breach")));
        let minimal = PasswordPolicy {
            min_length: 0,
            forbid_numeric: false,
            max_similarity: None,
            min_strength: 0,
            ..PasswordPolicy::default()
        };
        // Only the length cap, which cannot be turned off.
        assert_eq!(minimal.help_texts().len(), 1);
        assert_eq!(minimal.check("1", &["1"]), Ok(()));
    }

    #[test]
    fn settings_that_refuse_everything_are_rejected() {
        let p = |f: fn(&mut PasswordPolicy)| {
            let mut p = PasswordPolicy::default();
            f(&mut p);
            p.validate_settings()
        };
        assert_eq!(
            p(|p| p.max_similarity = Some(0.05)),
            Err(PolicyConfigError::SimilarityTooLow(0.05))
        );
        assert!(p(|p| p.max_similarity = Some(f64::NAN)).is_err());
        assert_eq!(p(|p| p.max_similarity = Some(0.1)), Ok(()));
        assert_eq!(
            p(|p| p.min_strength = 5),
            Err(PolicyConfigError::StrengthOutOfRange(5))
        );
        assert_eq!(
            p(|p| p.max_length = 9),
            Err(PolicyConfigError::MaxBelowMin {
                min_length: 10,
                max_length: 9
            })
        );
        assert!(
            p(|p| p.max_length = 9)
                .unwrap_err()
                .to_string()
                .contains("no password could pass")
        );
    }

    /// A breach checker that answers as told and records what it was asked.
    #[derive(Debug)]
    struct FakeBreached {
        answer: Result<bool, BreachCheckError>,
        asked: Mutex<Vec<[u8; 20]>>,
    }

    impl FakeBreached {
        fn new(answer: Result<bool, BreachCheckError>) -> Self {
            Self {
                answer,
                asked: Mutex::new(Vec::new()),
            }
        }
    }

    impl BreachedPasswords for FakeBreached {
        fn is_breached(&self, sha1: &[u8; 20]) -> Result<bool, BreachCheckError> {
            self.asked.lock().unwrap().push(*sha1);
            self.answer.clone()
        }
    }

    #[test]
    fn breached_passwords_are_refused_by_sha1() {
        let fake = Arc::new(FakeBreached::new(Ok(true)));
        let policy = PasswordPolicy {
            breached: Some(fake.clone()),
            ..PasswordPolicy::default()
        };
        let outcome = policy.evaluate("Tr0ub4dor&3-kayak-Quartz", &[]);
        assert_eq!(outcome.violations, [PolicyViolation::Breached]);
        assert!(outcome.breach_check_error.is_none());
        assert!(
            PolicyViolation::Breached
                .to_string()
                .contains("data breach")
        );
        // The lookup key is the SHA-1 of the UTF-8 bytes, as Have I Been Pwned keys it:
        // sha1("пароль") = 5670b4358ae287fe8e74c2ff6f6293f905409077 (Python's hashlib).
        let _ = policy.evaluate("пароль", &[]);
        let asked = fake.asked.lock().unwrap();
        assert_eq!(asked.len(), 2);
        assert_eq!(
            hex::encode(asked[1]),
            "5670b4358ae287fe8e74c2ff6f6293f905409077"
        );
    }

    #[test]
    fn breach_lookup_is_skipped_for_overlong_passwords() {
        let fake = Arc::new(FakeBreached::new(Ok(true)));
        let policy = PasswordPolicy {
            breached: Some(fake.clone()),
            ..PasswordPolicy::default()
        };
        let _ = policy.evaluate(&"x".repeat(2000), &[]);
        assert!(fake.asked.lock().unwrap().is_empty());
    }

    #[test]
    fn a_failed_breach_lookup_fails_open_and_is_reported() {
        let policy = PasswordPolicy {
            breached: Some(Arc::new(FakeBreached::new(Err(BreachCheckError::new(
                "/srv/pwned.txt: read error",
            ))))),
            ..PasswordPolicy::default()
        };
        // A good password is accepted, and the caller learns the check was skipped.
        let outcome = policy.evaluate("Tr0ub4dor&3-kayak-Quartz", &[]);
        assert!(outcome.is_accepted());
        let err = outcome.breach_check_error.unwrap();
        assert_eq!(
            err.to_string(),
            "could not check the breached-password list: /srv/pwned.txt: read error"
        );
        // Every other rule still applies.
        let outcome = policy.evaluate("password", &[]);
        assert!(!outcome.is_accepted());
        assert!(outcome.breach_check_error.is_some());
        assert!(policy.check("password", &[]).is_err());
    }

    #[test]
    fn violation_codes_follow_django() {
        assert_eq!(
            PolicyViolation::TooShort { min: 1 }.code(),
            "password_too_short"
        );
        assert_eq!(PolicyViolation::Common.code(), "password_too_common");
        assert_eq!(
            PolicyViolation::TooSimilarToUserInputs.code(),
            "password_too_similar"
        );
        assert_eq!(
            PolicyViolation::EntirelyNumeric.code(),
            "password_entirely_numeric"
        );
    }
}
