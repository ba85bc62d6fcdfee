//! argon2id password hashing with a configurable cost.

use anyhow::{Context, anyhow};
use argon2::password_hash::Error as HashError;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use common::config::Source;

use crate::domain::Password;

/// OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane.
pub const DEFAULT_MEMORY_KIB: u32 = 19_456;
/// See [`DEFAULT_MEMORY_KIB`].
pub const DEFAULT_ITERATIONS: u32 = 2;

/// Salt of the throw-away hash computed for unknown users (its output is discarded).
const DUMMY_SALT: &[u8; 16] = b"tessera-no-user!";

/// argon2id cost, from the variables `argon2_memory_kib` and `argon2_iterations`
/// (tests make it cheap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    /// Memory per hash, in KiB.
    pub memory_kib: u32,
    /// Number of passes.
    pub iterations: u32,
}

impl HashCost {
    /// Reads the cost variables, with OWASP's defaults.
    pub fn from_source(source: &(impl Source + ?Sized)) -> anyhow::Result<Self> {
        Ok(Self {
            memory_kib: source.get_or("argon2_memory_kib", DEFAULT_MEMORY_KIB)?,
            iterations: source.get_or("argon2_iterations", DEFAULT_ITERATIONS)?,
        })
    }
}

/// Hashes new passwords and checks stored hashes.
pub struct Hasher(Argon2<'static>);

impl Hasher {
    /// A hasher with `cost`; an error if argon2 refuses the parameters.
    pub fn new(cost: HashCost) -> anyhow::Result<Self> {
        let params = Params::new(cost.memory_kib, cost.iterations, 1, None)
            .map_err(|e| anyhow!("{e}"))
            .with_context(|| format!("Invalid argon2 cost {cost:?}"))?;
        Ok(Self(Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            params,
        )))
    }

    /// A PHC string (`$argon2id$v=19$m=...`) with a random salt.
    pub fn hash(&self, password: &Password) -> anyhow::Result<String> {
        let hash = self
            .0
            .hash_password(password.expose())
            .map_err(|e| anyhow!("{e}"))
            .context("Failed to hash a password")?;
        Ok(hash.to_string())
    }

    /// Whether `password` matches `stored`; a corrupt stored hash is an error.
    ///
    /// The cost comes from `stored`, so raising the cost later keeps old hashes valid.
    pub fn verify(&self, password: &Password, stored: &str) -> anyhow::Result<bool> {
        match self.0.verify_password(password.expose(), stored) {
            Ok(()) => Ok(true),
            Err(HashError::PasswordInvalid) => Ok(false),
            Err(e) => Err(anyhow!("{e}")).context("Failed to verify a stored password hash"),
        }
    }

    /// Does the work of [`Hasher::verify`] without a stored hash, so that an unknown
    /// email takes about as long to reject as a wrong password.
    pub fn verify_dummy(&self, password: &Password) {
        let result = self
            .0
            .hash_password_with_salt(password.expose(), DUMMY_SALT);
        // Keep the optimiser from discarding the computation.
        std::hint::black_box(result.is_ok());
    }
}

/// argon2's minimum memory, so tests stay fast.
#[cfg(test)]
pub const TEST_COST: HashCost = HashCost {
    memory_kib: 8,
    iterations: 1,
};

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn password(raw: &str) -> Password {
        Password::parse_new(Some(raw)).unwrap()
    }

    #[test]
    fn hashes_verify_and_reject_other_passwords() {
        let hasher = Hasher::new(TEST_COST).unwrap();
        let stored = hasher.hash(&password("correct horse")).unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=8,t=1,p=1$"),
            "{stored}"
        );
        assert!(!stored.contains("correct"));
        assert!(hasher.verify(&password("correct horse"), &stored).unwrap());
        assert!(!hasher.verify(&password("wrong horse"), &stored).unwrap());
    }

    #[test]
    fn salts_differ() {
        let hasher = Hasher::new(TEST_COST).unwrap();
        let pw = password("same-password");
        assert_ne!(hasher.hash(&pw).unwrap(), hasher.hash(&pw).unwrap());
    }

    #[test]
    fn the_cost_of_a_stored_hash_wins() {
        let cost = HashCost {
            memory_kib: 16,
            iterations: 2,
        };
        let old = Hasher::new(cost)
            .unwrap()
            .hash(&password("pw-1234"))
            .unwrap();
        let hasher = Hasher::new(TEST_COST).unwrap();
        assert!(hasher.verify(&password("pw-1234"), &old).unwrap());
    }

    #[test]
    fn corrupt_hashes_are_errors() {
        let hasher = Hasher::new(TEST_COST).unwrap();
        assert!(hasher.verify(&password("pw-1234"), "not a hash").is_err());
    }

    #[test]
    fn invalid_cost_is_an_error() {
        let cost = HashCost {
            memory_kib: 1,
            iterations: 1,
        };
        assert!(Hasher::new(cost).is_err());
    }

    #[test]
    fn cost_defaults_and_overrides() {
        let none: &[(&str, &str)] = &[];
        let defaults = HashCost {
            memory_kib: 19_456,
            iterations: 2,
        };
        assert_eq!(HashCost::from_source(none).unwrap(), defaults);
        let vars: &[(&str, &str)] = &[("argon2_memory_kib", "64"), ("argon2_iterations", "3")];
        let cheap = HashCost {
            memory_kib: 64,
            iterations: 3,
        };
        assert_eq!(HashCost::from_source(vars).unwrap(), cheap);
    }

    #[test]
    fn dummy_verification_costs_about_as_much_as_a_real_one() {
        let cost = HashCost {
            memory_kib: 4096,
            iterations: 2,
        };
        let hasher = Hasher::new(cost).unwrap();
        let pw = password("pw-1234");
        let stored = hasher.hash(&pw).unwrap();
        let timed = |f: &dyn Fn()| {
            let start = Instant::now();
            f();
            start.elapsed()
        };
        // Alternate the two and keep the fastest of each: robust to a busy machine.
        let (mut real, mut dummy) = (Duration::MAX, Duration::MAX);
        for _ in 0..5 {
            real = real.min(timed(&|| {
                hasher.verify(&pw, &stored).unwrap();
            }));
            dummy = dummy.min(timed(&|| hasher.verify_dummy(&pw)));
        }
        // Generous bounds: this only catches a dummy path that skips the work.
        assert!(
            dummy * 3 > real && real * 3 > dummy,
            "real {real:?}, dummy {dummy:?}"
        );
    }
}
