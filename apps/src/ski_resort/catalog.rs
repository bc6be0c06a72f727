//! Fixed reference data: resorts and their lifts, prices, and the names and places customers
//! are drawn from.

use crate::common::names;

/// A resort with its lifts and day-ticket pricing.
#[derive(Debug)]
pub(super) struct Resort {
    /// Resort name as it appears in `RESORT`.
    pub name: &'static str,
    /// Relative share of visitors.
    pub weight: u32,
    /// Weekday window price of a one-day ticket, in cents.
    pub day_price_cents: u32,
    /// Lifts and their relative popularity.
    pub lifts: &'static [(&'static str, u32)],
}

/// The resorts of the quickstart, with real lift names.
pub(super) const RESORTS: &[Resort] = &[
    Resort {
        name: "Vail",
        weight: 25,
        day_price_cents: 24_900,
        lifts: &[
            ("Gondola One", 14),
            ("Eagle Bahn Gondola", 12),
            ("Avanti Express", 10),
            ("Born Free Express", 8),
            ("Mountaintop Express", 9),
            ("Northwoods Express", 7),
            ("High Noon Express", 6),
            ("Orient Express", 5),
            ("Sun Up Express", 4),
            ("Game Creek Express", 4),
            ("Wildwood Express", 6),
            ("Pride Express", 5),
        ],
    },
    Resort {
        name: "Beaver Creek",
        weight: 18,
        day_price_cents: 23_900,
        lifts: &[
            ("Centennial Express", 14),
            ("Birds of Prey Express", 7),
            ("Cinch Express", 6),
            ("Grouse Mountain Express", 5),
            ("Larkspur Express", 8),
            ("Rose Bowl Express", 6),
            ("Strawberry Park Express", 9),
            ("Elkhorn Lift", 3),
        ],
    },
    Resort {
        name: "Breckenridge",
        weight: 25,
        day_price_cents: 21_900,
        lifts: &[
            ("BreckConnect Gondola", 12),
            ("Colorado SuperChair", 13),
            ("Peak 8 SuperConnect", 10),
            ("Rocky Mountain SuperChair", 9),
            ("Independence SuperChair", 6),
            ("Mercury SuperChair", 7),
            ("Falcon SuperChair", 5),
            ("Kensho SuperChair", 4),
            ("Imperial Express", 3),
        ],
    },
    Resort {
        name: "Keystone",
        weight: 20,
        day_price_cents: 17_900,
        lifts: &[
            ("River Run Gondola", 14),
            ("Summit Express", 10),
            ("Montezuma Express", 9),
            ("Outback Express", 6),
            ("Ruby Express", 6),
            ("Santiago Express", 5),
            ("Peru Express", 7),
            ("Wayback Express", 4),
        ],
    },
    Resort {
        name: "Heavenly",
        weight: 12,
        day_price_cents: 20_900,
        lifts: &[
            ("Heavenly Gondola", 12),
            ("Tamarack Express", 10),
            ("Comet Express", 8),
            ("Dipper Express", 6),
            ("Olympic Express", 5),
            ("Sky Express", 7),
            ("Stagecoach Express", 6),
            ("Gunbarrel Express", 4),
        ],
    },
];

/// Ticket lengths in days and their relative frequency.
pub(super) const TICKET_DAYS: &[(u32, u32)] =
    &[(1, 35), (2, 30), (3, 12), (4, 8), (5, 7), (6, 4), (7, 4)];

/// Discount per extra day on multi-day tickets, in percent of the day price.
pub(super) const MULTI_DAY_DISCOUNT_PCT: u32 = 6;

/// Season pass products: (price in cents, relative frequency).
pub(super) const SEASON_PASSES: &[(u32, u32)] = &[
    (105_100, 30), // full pass
    (78_300, 40),  // local pass
    (62_300, 10),  // military
    (55_900, 20),  // child / college
];

/// First names.
pub(super) const FIRST_NAMES: &[&str] = &names::concat::<50>(
    names::FIRST,
    &[
        "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Carlos", "Karen", "Daniel",
        "Lisa", "Matthew", "Nancy", "Anthony", "Sandra", "Mark", "Ashley", "Emily", "Kenji",
        "Priya", "Sofia", "Liam", "Noah", "Olivia", "Emma", "Ava", "Lucas", "Mia", "Ethan",
        "Aiden", "Chloe", "Zoe", "Mateo", "Aria", "Hannah", "Grace", "Leo", "Nora", "Owen",
    ],
);

/// Last names.
pub(super) const LAST_NAMES: &[&str] = &names::concat::<54>(
    names::LAST,
    &[
        "Hernandez",
        "Lopez",
        "Gonzalez",
        "Wilson",
        "Anderson",
        "Thomas",
        "Taylor",
        "Moore",
        "Jackson",
        "Martin",
        "Lee",
        "Perez",
        "Thompson",
        "White",
        "Harris",
        "Sanchez",
        "Clark",
        "Ramirez",
        "Lewis",
        "Robinson",
        "Walker",
        "Young",
        "Allen",
        "King",
        "Wright",
        "Scott",
        "Torres",
        "Nguyen",
        "Hill",
        "Flores",
        "Green",
        "Adams",
        "Nelson",
        "Baker",
        "Hall",
        "Rivera",
        "Campbell",
        "Mitchell",
        "Carter",
        "Roberts",
        "Tanaka",
        "Patel",
        "Kim",
        "Muller",
    ],
);

/// Street names.
pub(super) const STREETS: &[&str] = &[
    "Aspen Ln",
    "Main St",
    "Pine St",
    "Maple Ave",
    "Oak St",
    "Cedar Ct",
    "Elm St",
    "Spruce Way",
    "Lake Dr",
    "Hill Rd",
    "Summit Blvd",
    "Powder Ridge Rd",
    "Columbine Dr",
    "Meadow Ln",
    "Canyon Rd",
    "Broadway",
    "Sunset Blvd",
    "Park Ave",
    "River Rd",
    "Ridge View Dr",
];

/// Cities with their state, ZIP prefix and phone area code: (city, state, zip3, area code).
pub(super) const CITIES: &[(&str, &str, &str, &str)] = &[
    ("Denver", "CO", "802", "303"),
    ("Boulder", "CO", "803", "720"),
    ("Colorado Springs", "CO", "809", "719"),
    ("Fort Collins", "CO", "805", "970"),
    ("Salt Lake City", "UT", "841", "801"),
    ("San Francisco", "CA", "941", "415"),
    ("Sacramento", "CA", "958", "916"),
    ("Los Angeles", "CA", "900", "213"),
    ("Reno", "NV", "895", "775"),
    ("Phoenix", "AZ", "850", "602"),
    ("Dallas", "TX", "752", "214"),
    ("Austin", "TX", "787", "512"),
    ("Chicago", "IL", "606", "312"),
    ("New York", "NY", "100", "212"),
    ("Boston", "MA", "021", "617"),
    ("Seattle", "WA", "981", "206"),
    ("Minneapolis", "MN", "554", "612"),
    ("Atlanta", "GA", "303", "404"),
];

/// E-mail domains.
pub(super) const EMAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "icloud.com",
    "hotmail.com",
    "proton.me",
    "aol.com",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_sane() {
        assert_eq!(RESORTS.len(), 5);
        for r in RESORTS {
            assert!(r.lifts.len() >= 8, "{} has few lifts", r.name);
            assert!(r.weight > 0 && r.day_price_cents > 10_000);
            let mut names: Vec<_> = r.lifts.iter().map(|l| l.0).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), r.lifts.len(), "duplicate lift at {}", r.name);
        }
        assert!(TICKET_DAYS
            .iter()
            .all(|&(d, w)| (1..=7).contains(&d) && w > 0));
    }
}
