//! Fixed reference data: products by price tier, and the names and places customers are drawn
//! from.

use crate::common::names;

/// A product: (id, name, category).
pub(super) type Product = (u32, &'static str, &'static str);

/// Products whose unit price is usually under $40.
pub(super) const BUDGET: &[Product] = &[
    (1001, "Paperback Novel", "Books"),
    (1002, "Cookbook: Weeknight Dinners", "Books"),
    (1003, "Stainless Water Bottle", "Sports & Outdoors"),
    (1004, "Yoga Mat Strap", "Sports & Outdoors"),
    (1005, "Organic Lip Balm Set", "Beauty"),
    (1006, "Vitamin C Serum", "Beauty"),
    (1007, "Puzzle 1000 Pieces", "Toys & Games"),
    (1008, "Card Game Night Pack", "Toys & Games"),
    (1009, "Silicone Spatula Set", "Home & Kitchen"),
    (1010, "Cotton Socks 6-Pack", "Clothing"),
    (1011, "USB-C Cable 2 m", "Electronics"),
    (1012, "Scented Candle", "Home & Kitchen"),
];

/// Products whose unit price is usually between $40 and $200.
pub(super) const MIDRANGE: &[Product] = &[
    (2001, "Running Shoes", "Clothing"),
    (2002, "Rain Jacket", "Clothing"),
    (2003, "Denim Jeans", "Clothing"),
    (2004, "Bluetooth Speaker", "Electronics"),
    (2005, "Wireless Earbuds", "Electronics"),
    (2006, "Cast Iron Skillet", "Home & Kitchen"),
    (2007, "Chef's Knife", "Home & Kitchen"),
    (2008, "Hiking Backpack 30 L", "Sports & Outdoors"),
    (2009, "Adjustable Dumbbells", "Sports & Outdoors"),
    (2010, "Skincare Gift Set", "Beauty"),
    (2011, "Building Blocks Castle", "Toys & Games"),
    (2012, "Hardcover Box Set", "Books"),
];

/// Products whose unit price is usually over $200.
pub(super) const PREMIUM: &[Product] = &[
    (3001, "Noise-Cancelling Headphones", "Electronics"),
    (3002, "Smartwatch", "Electronics"),
    (3003, "4K Monitor 27 in", "Electronics"),
    (3004, "Tablet 11 in", "Electronics"),
    (3005, "Espresso Machine", "Home & Kitchen"),
    (3006, "Robot Vacuum", "Home & Kitchen"),
    (3007, "Road Bike Helmet Pro", "Sports & Outdoors"),
    (3008, "Down Parka", "Clothing"),
    (3009, "Leather Boots", "Clothing"),
    (3010, "Camping Tent 4-Person", "Sports & Outdoors"),
];

/// Order statuses and their relative frequency.
pub(super) const STATUSES: &[(&str, u32)] = &[
    ("pending", 15),
    ("processing", 25),
    ("shipped", 30),
    ("delivered", 25),
    ("cancelled", 5),
];

/// Payment methods and their relative frequency.
pub(super) const PAYMENT_METHODS: &[(&str, u32)] = &[
    ("credit_card", 60),
    ("paypal", 20),
    ("debit_card", 15),
    ("gift_card", 5),
];

/// First names.
pub(super) const FIRST_NAMES: &[&str] = &names::concat::<28>(
    names::FIRST,
    &[
        "Carlos", "Sofia", "Kenji", "Priya", "Liam", "Olivia", "Noah", "Emma", "Mateo", "Aria",
        "Lucas", "Mia", "Ethan", "Chloe", "Leo", "Nora",
    ],
);

/// Last names.
pub(super) const LAST_NAMES: &[&str] = &names::concat::<24>(
    names::LAST,
    &[
        "Lopez", "Wilson", "Anderson", "Taylor", "Lee", "Nguyen", "Patel", "Kim", "Tanaka",
        "Muller", "Clark", "Walker", "Young", "King",
    ],
);

/// Cities and their state.
pub(super) const CITIES: &[(&str, &str)] = &[
    ("New York", "NY"),
    ("Los Angeles", "CA"),
    ("Chicago", "IL"),
    ("Houston", "TX"),
    ("Phoenix", "AZ"),
    ("Philadelphia", "PA"),
    ("San Antonio", "TX"),
    ("San Diego", "CA"),
    ("Dallas", "TX"),
    ("Austin", "TX"),
    ("Seattle", "WA"),
    ("Denver", "CO"),
    ("Boston", "MA"),
    ("Atlanta", "GA"),
    ("Miami", "FL"),
    ("Minneapolis", "MN"),
    ("Portland", "OR"),
    ("Nashville", "TN"),
];

/// E-mail domains.
pub(super) const EMAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "icloud.com",
    "proton.me",
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn product_ids_are_unique() {
        let all: Vec<_> = [BUDGET, MIDRANGE, PREMIUM].concat();
        let ids: HashSet<_> = all.iter().map(|p| p.0).collect();
        assert_eq!(ids.len(), all.len());
        assert!(STATUSES.iter().chain(PAYMENT_METHODS).all(|s| s.1 > 0));
    }
}
