//! The personal names the generators' name lists (ski_resort's and ecommerce's catalogs) start
//! with.

/// The first names both catalogs start their lists with.
pub const FIRST: &[&str] = &[
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
];

/// The last names both catalogs start their lists with.
pub const LAST: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
];

/// `a` followed by `b`, as a constant; `N` must be their total length (checked when compiling).
pub const fn concat<const N: usize>(a: &[&'static str], b: &[&'static str]) -> [&'static str; N] {
    assert!(a.len() + b.len() == N, "N is not the total length");
    let mut out = [""; N];
    let mut i = 0;
    while i < a.len() {
        out[i] = a[i];
        i += 1;
    }
    while i < N {
        out[i] = b[i - a.len()];
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn concat_keeps_both_parts_in_order() {
        const ALL: [&str; 3] = super::concat(&["a"], &["b", "c"]);
        assert_eq!(ALL, ["a", "b", "c"]);
    }
}
