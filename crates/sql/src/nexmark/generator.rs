//! The Nexmark event generator, after the model of the Beam and Flink Nexmark generators
//! (Tucker et al., "NEXMark"; github.com/nexmark/nexmark): event `n` is a person, an auction
//! or a bid by its place in each group of 50 (1 : 3 : 46); ids are dense from 1000, so a bid
//! names an auction and a person that exist or are about to ("lead"); a share of bids goes to
//! hot auctions and hot bidders, a share of auctions to hot sellers; prices are log-uniform
//! from $1 to $1M (in cents); `extra` pads each event to the model's average size.
//!
//! Each event draws from its own random stream, seeded by the run's seed and its number, so
//! event `n` is the same whatever was generated before it (and runs are reproducible from
//! the seed). Event times are `base + n × inter-event delay`: in order, one per delay.

/// Ids of the first person and auction, and the first category.
const FIRST_PERSON_ID: i64 = 1000;
const FIRST_AUCTION_ID: i64 = 1000;
const FIRST_CATEGORY_ID: i64 = 10;
const NUM_CATEGORIES: u64 = 5;

/// The event mix: in every `TOTAL_PROPORTION` events, this many persons, auctions, bids.
const PERSON_PROPORTION: u64 = 1;
const AUCTION_PROPORTION: u64 = 3;
const BID_PROPORTION: u64 = 46;
const TOTAL_PROPORTION: u64 = PERSON_PROPORTION + AUCTION_PROPORTION + BID_PROPORTION;

/// People who may still place bids or sell, and auctions still open for bids.
const NUM_ACTIVE_PEOPLE: u64 = 1000;
const NUM_IN_FLIGHT_AUCTIONS: u64 = 100;
/// How far past the last generated id a reference may point (an entity about to exist).
const PERSON_ID_LEAD: u64 = 10;
const AUCTION_ID_LEAD: u64 = 10;

/// One in `HOT_*_RATIO` ids is hot; `*_HOT_CHOICE` is the odds (n − 1 in n) of picking one.
const HOT_SELLER_RATIO: u64 = 100;
const HOT_AUCTION_RATIO: u64 = 100;
const HOT_BIDDER_RATIO: u64 = 100;
const HOT_SELLER_CHOICE: u64 = 4;
const HOT_AUCTION_CHOICE: u64 = 2;
const HOT_BIDDER_CHOICE: u64 = 4;
const HOT_CHANNEL_CHOICE: u64 = 100;
const CHANNELS: u64 = 10_000;

/// Average sizes in bytes the `extra` column pads events to.
const AVG_PERSON_BYTES: usize = 200;
const AVG_AUCTION_BYTES: usize = 500;
const AVG_BID_BYTES: usize = 100;

const FIRST_NAMES: &[&str] = &[
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
const LAST_NAMES: &[&str] = &[
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];
const CITIES: &[&str] = &[
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
/// Lower case, as the queries' texts compare them (q3: `P.state = 'or'`).
const STATES: &[&str] = &["az", "ca", "id", "or", "wa", "wy"];
const HOT_CHANNELS: &[&str] = &["Google", "Facebook", "Baidu", "Apple"];

/// What the generator is asked for.
#[derive(Debug, Clone, Copy)]
pub struct GeneratorConfig {
    pub seed: u64,
    /// Event time of event 0, microseconds since the Unix epoch.
    pub base_time_us: i64,
    /// Event-time distance between consecutive events (10,000 events per second of event
    /// time at 100 µs, the generators' default rate).
    pub inter_event_us: i64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            seed: 1,
            // 2026-01-01T00:00:00Z.
            base_time_us: 1_767_225_600_000_000,
            inter_event_us: 100,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: i64,
    pub name: String,
    pub email_address: String,
    pub credit_card: String,
    pub city: String,
    pub state: String,
    pub date_time: i64,
    pub extra: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auction {
    pub id: i64,
    pub item_name: String,
    pub description: String,
    pub initial_bid: i64,
    pub reserve: i64,
    pub date_time: i64,
    pub expires: i64,
    pub seller: i64,
    pub category: i64,
    pub extra: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bid {
    pub auction: i64,
    pub bidder: i64,
    pub price: i64,
    pub channel: String,
    pub url: String,
    pub date_time: i64,
    pub extra: String,
}

/// One generated event; times are microseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Person(Person),
    Auction(Auction),
    Bid(Bid),
}

impl Event {
    /// The source (and topic) the event belongs to.
    pub fn topic(&self) -> &'static str {
        match self {
            Event::Person(_) => "person",
            Event::Auction(_) => "auction",
            Event::Bid(_) => "bid",
        }
    }

    /// The event as the JSON object its source decodes (timestamps as
    /// `YYYY-MM-DD HH:MM:SS.ffffff`, UTC).
    pub fn to_json(&self) -> String {
        let value = match self {
            Event::Person(p) => serde_json::json!({
                "id": p.id, "name": p.name, "email_address": p.email_address,
                "credit_card": p.credit_card, "city": p.city, "state": p.state,
                "date_time": timestamp_text(p.date_time), "extra": p.extra,
            }),
            Event::Auction(a) => serde_json::json!({
                "id": a.id, "item_name": a.item_name, "description": a.description,
                "initial_bid": a.initial_bid, "reserve": a.reserve,
                "date_time": timestamp_text(a.date_time), "expires": timestamp_text(a.expires),
                "seller": a.seller, "category": a.category, "extra": a.extra,
            }),
            Event::Bid(b) => serde_json::json!({
                "auction": b.auction, "bidder": b.bidder, "price": b.price,
                "channel": b.channel, "url": b.url,
                "date_time": timestamp_text(b.date_time), "extra": b.extra,
            }),
        };
        value.to_string()
    }
}

/// Generates the events of one run; `event(n)` is a pure function of the config and `n`.
#[derive(Debug, Clone)]
pub struct Generator {
    config: GeneratorConfig,
}

impl Generator {
    pub fn new(config: GeneratorConfig) -> Generator {
        Generator { config }
    }

    /// Event number `n` (from 0).
    pub fn event(&self, n: u64) -> Event {
        let mut rng = Rng::new(self.config.seed, n);
        let time = self.event_time(n);
        let offset = n % TOTAL_PROPORTION;
        if offset < PERSON_PROPORTION {
            Event::Person(self.person(n, time, &mut rng))
        } else if offset < PERSON_PROPORTION + AUCTION_PROPORTION {
            Event::Auction(self.auction(n, time, &mut rng))
        } else {
            Event::Bid(self.bid(n, time, &mut rng))
        }
    }

    fn event_time(&self, n: u64) -> i64 {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        self.config
            .base_time_us
            .saturating_add(n.saturating_mul(self.config.inter_event_us))
    }

    fn person(&self, n: u64, time: i64, rng: &mut Rng) -> Person {
        let id = as_id(last_base0_person_id(n)) + FIRST_PERSON_ID;
        let name = format!("{} {}", rng.pick(FIRST_NAMES), rng.pick(LAST_NAMES));
        let email_address = format!("{}@{}.com", rng.string(7), rng.string(5));
        let credit_card = (0..4)
            .map(|_| format!("{:04}", rng.below(10_000)))
            .collect::<Vec<_>>()
            .join(" ");
        let city = rng.pick(CITIES).to_string();
        let state = rng.pick(STATES).to_string();
        let size = 8 + name.len() + email_address.len() + credit_card.len() + city.len() + 10;
        let extra = rng.extra(size, AVG_PERSON_BYTES);
        Person {
            id,
            name,
            email_address,
            credit_card,
            city,
            state,
            date_time: time,
            extra,
        }
    }

    fn auction(&self, n: u64, time: i64, rng: &mut Rng) -> Auction {
        let id = last_base0_auction_id(n) + FIRST_AUCTION_ID;
        let seller = if rng.below(HOT_SELLER_CHOICE) > 0 {
            // A hot seller: the most recent multiple of the ratio.
            as_id(last_base0_person_id(n) / HOT_SELLER_RATIO * HOT_SELLER_RATIO)
        } else {
            as_id(next_base0_person_id(n, rng))
        } + FIRST_PERSON_ID;
        let category = FIRST_CATEGORY_ID + as_id(rng.below(NUM_CATEGORIES));
        let initial_bid = rng.price();
        let reserve = initial_bid + rng.price();
        let expires = time + self.auction_length_us(rng);
        let item_name = rng.string(20);
        let description = rng.string(100);
        let size = 8 + item_name.len() + description.len() + 8 + 8 + 8 + 8 + 8;
        let extra = rng.extra(size, AVG_AUCTION_BYTES);
        Auction {
            id,
            item_name,
            description,
            initial_bid,
            reserve,
            date_time: time,
            expires,
            seller,
            category,
            extra,
        }
    }

    /// How long an auction stays open: up to twice the time it takes to generate the
    /// auctions in flight, so about that many are open at once.
    fn auction_length_us(&self, rng: &mut Rng) -> i64 {
        let events_for_auctions = NUM_IN_FLIGHT_AUCTIONS * TOTAL_PROPORTION / AUCTION_PROPORTION;
        let horizon = as_id(events_for_auctions).saturating_mul(self.config.inter_event_us);
        1 + as_id(rng.below(u64::try_from(horizon.max(1) * 2).unwrap_or(1)))
    }

    fn bid(&self, n: u64, time: i64, rng: &mut Rng) -> Bid {
        let auction = if rng.below(HOT_AUCTION_CHOICE) > 0 {
            let last = last_base0_auction_id(n).max(0);
            last / as_id(HOT_AUCTION_RATIO) * as_id(HOT_AUCTION_RATIO)
        } else {
            as_id(next_base0_auction_id(n, rng))
        } + FIRST_AUCTION_ID;
        let bidder = if rng.below(HOT_BIDDER_CHOICE) > 0 {
            // Hot bidders are one past the hot sellers (so they do not bid on their own).
            as_id(last_base0_person_id(n) / HOT_BIDDER_RATIO * HOT_BIDDER_RATIO + 1)
        } else {
            as_id(next_base0_person_id(n, rng))
        } + FIRST_PERSON_ID;
        let price = rng.price();
        let (channel, url) = if rng.below(HOT_CHANNEL_CHOICE) > 0 {
            let i = rng.below(HOT_CHANNELS.len() as u64) as usize;
            let channel = HOT_CHANNELS.get(i).copied().unwrap_or("Google");
            (channel.to_string(), hot_url(i))
        } else {
            let c = rng.below(CHANNELS);
            (
                format!("channel-{c}"),
                format!("{}&channel_id={}", base_url(rng), (c as u32).reverse_bits()),
            )
        };
        let size = 8 + 8 + 8 + channel.len() + url.len() + 8;
        let extra = rng.extra(size, AVG_BID_BYTES);
        Bid {
            auction,
            bidder,
            price,
            channel,
            url,
            date_time: time,
            extra,
        }
    }
}

/// The fixed URL of hot channel `i` (the same for every bid of that channel).
fn hot_url(i: usize) -> String {
    base_url(&mut Rng::new(0x4e45_584d, i as u64))
}

fn base_url(rng: &mut Rng) -> String {
    format!(
        "https://www.nexmark.com/{}/{}/{}/item.htm?query=1",
        rng.string_with(5, '_'),
        rng.string_with(5, '_'),
        rng.string_with(5, '_')
    )
}

fn as_id(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The base-0 id of the last person generated at or before event `n`.
// With one person per group the `min` is constant, but it is the model's rule for any mix.
#[allow(clippy::unnecessary_min_or_max)]
fn last_base0_person_id(n: u64) -> u64 {
    let epoch = n / TOTAL_PROPORTION;
    let offset = (n % TOTAL_PROPORTION).min(PERSON_PROPORTION - 1);
    epoch * PERSON_PROPORTION + offset
}

/// The base-0 id of the last auction generated at or before event `n` (-1 before the first).
fn last_base0_auction_id(n: u64) -> i64 {
    let mut epoch = as_id(n / TOTAL_PROPORTION);
    let mut offset = n % TOTAL_PROPORTION;
    if offset < PERSON_PROPORTION {
        epoch -= 1;
        offset = AUCTION_PROPORTION - 1;
    } else if offset >= PERSON_PROPORTION + AUCTION_PROPORTION {
        offset = AUCTION_PROPORTION - 1;
    } else {
        offset -= PERSON_PROPORTION;
    }
    epoch * as_id(AUCTION_PROPORTION) + as_id(offset)
}

/// A person among the active ones, or one about to be generated.
fn next_base0_person_id(n: u64, rng: &mut Rng) -> u64 {
    let people = last_base0_person_id(n) + 1;
    let active = people.min(NUM_ACTIVE_PEOPLE);
    people - active + rng.below(active + PERSON_ID_LEAD)
}

/// An auction among those in flight, or one about to be generated.
fn next_base0_auction_id(n: u64, rng: &mut Rng) -> u64 {
    let last = u64::try_from(last_base0_auction_id(n).max(0)).unwrap_or(0);
    let min = last.saturating_sub(NUM_IN_FLIGHT_AUCTIONS);
    min + rng.below(last - min + 1 + AUCTION_ID_LEAD)
}

/// `YYYY-MM-DD HH:MM:SS.ffffff` of microseconds since the Unix epoch (UTC, proleptic
/// Gregorian; the civil-from-days conversion of H. Hinnant's date algorithms).
pub fn timestamp_text(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let micros = us.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{micros:06}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// SplitMix64 over (seed, event number): small, fast and good enough for test data.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, n: u64) -> Rng {
        let mut r = Rng(seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        r.next();
        r
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        let i = self.below(from.len() as u64) as usize;
        from.get(i).copied().unwrap_or_default()
    }

    /// Log-uniform in cents from $1 to $1M.
    fn price(&mut self) -> i64 {
        (10f64.powf(self.unit() * 6.0) * 100.0).round() as i64
    }

    /// 3 to `max` lower-case letters, now and then a space.
    fn string(&mut self, max: usize) -> String {
        self.string_with(max, ' ')
    }

    fn string_with(&mut self, max: usize, special: char) -> String {
        let len = 3 + self.below(max.saturating_sub(2) as u64) as usize;
        self.exact(len, special)
    }

    fn exact(&mut self, len: usize, special: char) -> String {
        (0..len)
            .map(|_| {
                if self.below(13) == 0 {
                    special
                } else {
                    char::from(b'a' + self.below(26) as u8)
                }
            })
            .collect()
    }

    /// Padding that brings an event of `size` bytes to `average` on average (±20 %).
    fn extra(&mut self, size: usize, average: usize) -> String {
        if size >= average {
            return String::new();
        }
        let want = average - size;
        let delta = want / 5;
        let len = want - delta + self.below(2 * delta as u64 + 1) as usize;
        self.exact(len, ' ')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_is_one_to_three_to_forty_six() {
        let g = Generator::new(GeneratorConfig::default());
        let mut counts = [0u64; 3];
        for n in 0..5_000 {
            match g.event(n) {
                Event::Person(_) => counts[0] += 1,
                Event::Auction(_) => counts[1] += 1,
                Event::Bid(_) => counts[2] += 1,
            }
        }
        assert_eq!(counts, [100, 300, 4600]);
    }

    #[test]
    fn events_are_a_function_of_seed_and_number() {
        let a = Generator::new(GeneratorConfig::default());
        let b = Generator::new(GeneratorConfig::default());
        let other = Generator::new(GeneratorConfig {
            seed: 2,
            ..GeneratorConfig::default()
        });
        assert_eq!(a.event(777), b.event(777));
        assert_ne!(a.event(777), other.event(777));
        // Ids are dense and in order: person k is event 50k.
        for k in 0..20u64 {
            let Event::Person(p) = a.event(k * 50) else {
                panic!("event {} is a person", k * 50)
            };
            assert_eq!(p.id, 1000 + k as i64);
            let Event::Auction(x) = a.event(k * 50 + 3) else {
                panic!("an auction")
            };
            assert_eq!(x.id, 1000 + 3 * k as i64 + 2);
        }
    }

    #[test]
    fn references_point_at_entities_that_exist_or_are_about_to() {
        let g = Generator::new(GeneratorConfig::default());
        let mut people = 0i64;
        let mut auctions = 0i64;
        let mut hot = 0;
        let mut bids = 0;
        for n in 0..50_000 {
            match g.event(n) {
                Event::Person(_) => people += 1,
                Event::Auction(a) => {
                    auctions += 1;
                    assert!(a.seller < 1000 + people + 10, "{a:?}");
                    assert!((10..15).contains(&a.category));
                    assert!(a.expires > a.date_time && a.reserve > a.initial_bid);
                }
                Event::Bid(b) => {
                    bids += 1;
                    assert!(b.auction < 1000 + auctions + 10, "{b:?}");
                    assert!(b.bidder < 1000 + people + 10, "{b:?}");
                    assert!((100..=100_000_000).contains(&b.price), "{b:?}");
                    if HOT_CHANNELS.contains(&b.channel.as_str()) {
                        hot += 1;
                    } else {
                        assert!(b.url.contains("&channel_id="), "{b:?}");
                    }
                }
            }
        }
        // 99 in 100 bids come through a hot channel.
        assert!(hot * 100 > bids * 95, "{hot} of {bids}");
    }

    #[test]
    fn json_carries_the_columns_and_readable_times() {
        let g = Generator::new(GeneratorConfig::default());
        let v: serde_json::Value = serde_json::from_str(&g.event(10).to_json()).expect("json");
        for column in [
            "auction",
            "bidder",
            "price",
            "channel",
            "url",
            "date_time",
            "extra",
        ] {
            assert!(v.get(column).is_some(), "{column} in {v}");
        }
        assert_eq!(v["date_time"], "2026-01-01 00:00:00.001000");
        assert_eq!(
            timestamp_text(951_782_400_000_001),
            "2000-02-29 00:00:00.000001"
        );
        assert_eq!(timestamp_text(-1), "1969-12-31 23:59:59.999999");
    }
}
