//! Browsers that have completed a sign-in as a person. Such a browser carries a marker of that
//! person (a keyed hash of their id, so it names no one to anyone without the master key), and
//! the mailbox-wide bound on emailed codes does not apply to it: strangers who type someone's
//! email from many addresses can hold off codes asked from a new browser, never from that
//! person's own.

use crate::crypto::{hex, KeyedHasher};

const PURPOSE: &str = "known_device";

/// How many people one browser is remembered for (a shared computer); the newest first.
pub const MAX_PEOPLE: usize = 3;

/// How long a browser stays known after its last completed sign-in.
pub const LIFETIME_SECS: i64 = 400 * 24 * 3_600;

/// Bytes of the keyed hash kept in a marker.
const MARKER_BYTES: usize = 16;

/// The marker of `user_id`.
fn marker(hasher: &KeyedHasher, user_id: &str) -> String {
    hex(&hasher.hash(PURPOSE, user_id.as_bytes())[..MARKER_BYTES])
}

/// The markers of a cookie value that have the form of one (anything else is ignored).
fn markers(cookie: &str) -> impl Iterator<Item = &str> {
    cookie
        .split('.')
        .filter(|m| m.len() == 2 * MARKER_BYTES && m.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether the cookie value `cookie` says this browser completed a sign-in as `user_id`,
/// compared in constant time.
pub fn vouches_for(hasher: &KeyedHasher, cookie: Option<&str>, user_id: &str) -> bool {
    let Some(cookie) = cookie else {
        return false;
    };
    let expected = marker(hasher, user_id);
    markers(cookie).fold(false, |found, m| {
        found
            | aws_lc_rs::constant_time::verify_slices_are_equal(m.as_bytes(), expected.as_bytes())
                .is_ok()
    })
}

/// The cookie value after a sign-in as `user_id` completed in a browser that carried
/// `cookie`: that person first, then up to [`MAX_PEOPLE`] - 1 others it already knew.
pub fn remember(hasher: &KeyedHasher, cookie: Option<&str>, user_id: &str) -> String {
    let mut kept = vec![marker(hasher, user_id)];
    for m in cookie.into_iter().flat_map(markers) {
        if kept.len() == MAX_PEOPLE {
            break;
        }
        if !kept.iter().any(|k| k.eq_ignore_ascii_case(m)) {
            kept.push(m.to_ascii_lowercase());
        }
    }
    kept.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> KeyedHasher {
        KeyedHasher::new(&crate::crypto::MasterKey::generate())
    }

    #[test]
    fn a_browser_is_known_for_the_people_who_signed_in_there() {
        let h = hasher();
        let first = remember(&h, None, "u1");
        assert!(vouches_for(&h, Some(&first), "u1"));
        assert!(!vouches_for(&h, Some(&first), "u2"));
        let both = remember(&h, Some(&first), "u2");
        assert!(vouches_for(&h, Some(&both), "u1"));
        assert!(vouches_for(&h, Some(&both), "u2"));
        assert!(both.starts_with(&marker(&h, "u2")), "newest first");
    }

    #[test]
    fn a_browser_remembers_a_few_people_and_no_one_twice() {
        let h = hasher();
        let mut cookie = None;
        for id in ["u1", "u2", "u1", "u3", "u4"] {
            cookie = Some(remember(&h, cookie.as_deref(), id));
        }
        let cookie = cookie.expect("cookie");
        assert_eq!(cookie.split('.').count(), MAX_PEOPLE);
        for (id, known) in [("u4", true), ("u3", true), ("u1", true), ("u2", false)] {
            assert_eq!(vouches_for(&h, Some(&cookie), id), known, "{id}");
        }
    }

    #[test]
    fn made_up_or_foreign_markers_vouch_for_no_one() {
        let h = hasher();
        let other_deployment = remember(&hasher(), None, "u1");
        assert!(!vouches_for(&h, Some(&other_deployment), "u1"));
        for forged in ["", "u1", "x.y.z", &"0".repeat(32), &"g".repeat(32)] {
            assert!(!vouches_for(&h, Some(forged), "u1"), "{forged}");
        }
        assert!(!vouches_for(&h, None, "u1"));
        // Malformed parts of a cookie are dropped, not kept.
        assert_eq!(remember(&h, Some("junk.<script>"), "u1"), marker(&h, "u1"));
    }
}
