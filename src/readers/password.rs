//! Web users' passwords: Argon2id in the PHC string form (`$argon2id$v=19$m=…`),
//! with OWASP's costs for interactive logins (19 MiB, 2 passes, 1 lane): a login
//! costs the server tens of milliseconds, a guess costs an attacker as much. The
//! costs are in each string, so raising them later leaves old hashes readable.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use super::{ReaderError, Result};

/// The shortest password accepted.
pub const MIN_LENGTH: usize = 12;
/// The longest (a bound on the work one login attempt may ask for).
pub const MAX_LENGTH: usize = 1024;

fn hasher(memory_kib: u32, passes: u32) -> Result<Argon2<'static>> {
    let params = Params::new(memory_kib, passes, 1, None).map_err(|e| ReaderError::Password(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Whether `password` may be set: [`MIN_LENGTH`] to [`MAX_LENGTH`] bytes, not all
/// one character.
pub fn check_new(password: &str) -> Result<()> {
    if password.len() < MIN_LENGTH {
        return Err(ReaderError::Password(format!("shorter than {MIN_LENGTH} characters")));
    }
    if password.len() > MAX_LENGTH {
        return Err(ReaderError::Password(format!("longer than {MAX_LENGTH} bytes")));
    }
    let mut chars = password.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        return Err(ReaderError::Password("one character repeated".into()));
    }
    Ok(())
}

/// The PHC string of `password` with a fresh random salt.
pub fn hash(password: &str) -> Result<String> {
    hash_with(password, 19 * 1024, 2)
}

/// [`hash`] with other costs (tests use cheap ones).
pub fn hash_with(password: &str, memory_kib: u32, passes: u32) -> Result<String> {
    check_new(password)?;
    let salt_bytes = crate::crypt::random::<16>().map_err(|e| ReaderError::Password(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| ReaderError::Password(e.to_string()))?;
    Ok(hasher(memory_kib, passes)?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| ReaderError::Password(e.to_string()))?
        .to_string())
}

/// Whether `password` matches `phc`. A malformed or non-Argon2id string is an
/// error, not a mismatch; a password over [`MAX_LENGTH`] never matches.
pub fn verify(password: &str, phc: &str) -> Result<bool> {
    let parsed = PasswordHash::new(phc).map_err(|e| ReaderError::Password(format!("stored hash: {e}")))?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(ReaderError::Password(format!(
            "stored hash: algorithm {} is not argon2id",
            parsed.algorithm
        )));
    }
    if password.len() > MAX_LENGTH {
        return Ok(false);
    }
    // The costs come from the string; the default instance only dispatches.
    Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash_with("correct horse battery", 256, 1).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=256,t=1,p=1$"), "{h}");
        assert!(verify("correct horse battery", &h).unwrap());
        assert!(!verify("correct horse batterz", &h).unwrap());
        assert!(!verify("", &h).unwrap());
        assert!(!verify(&"x".repeat(MAX_LENGTH + 1), &h).unwrap());
        // Salted: the same password hashes differently each time.
        assert_ne!(h, hash_with("correct horse battery", 256, 1).unwrap());
    }

    #[test]
    fn the_default_costs_are_owasps() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery", &h).unwrap());
    }

    #[test]
    fn weak_passwords_and_foreign_hashes_are_refused() {
        for bad in ["", "short", "aaaaaaaaaaaaaaaa", &"x".repeat(MAX_LENGTH + 1)] {
            assert!(hash_with(bad, 256, 1).is_err(), "{bad:?}");
        }
        assert!(verify("pw", "not a hash").is_err());
        assert!(verify(
            "pw",
            "$argon2i$v=19$m=256,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$0000000000000000000000000000000000000000000"
        )
        .is_err());
    }
}
