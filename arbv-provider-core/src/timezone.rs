//! The provider's time zone (`PROVIDER_TIMEZONE`): a zone of the IANA tz database, which jiff
//! bundles into the provider. [`Zone`] is a chrono [`TimeZone`], so [`Context::now`] and
//! `instant.with_timezone(&zone)` give local times as chrono types.
//!
//! Why jiff's database rather than chrono-tz: chrono-tz compiles the transitions of every zone
//! into static tables of pointers, ~33,000 of them, which the loader relocates at every start;
//! that was ~1.5 MiB of an idle provider's memory (BENCHMARKS.md). jiff keeps each zone as its
//! TZif bytes and reads only the one named.
//!
//! [`Context::now`]: crate::Context::now

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, MappedLocalTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use jiff::tz::{AmbiguousOffset, Offset, TimeZoneDatabase};

/// A zone of the IANA tz database, such as `Europe/Moscow` or `UTC`. Parse one from its name
/// (`"Europe/Moscow".parse::<Zone>()`); a name the database does not know is an error.
#[derive(Clone, PartialEq, Eq)]
pub struct Zone(jiff::tz::TimeZone);

impl Zone {
    /// Coordinated Universal Time.
    pub const UTC: Zone = Zone(jiff::tz::TimeZone::UTC);

    /// The zone's IANA name, as the database spells it (`Europe/Moscow`).
    pub fn name(&self) -> &str {
        // Every zone a `Zone` can hold comes from the database by name, or is UTC.
        self.0.iana_name().unwrap_or("UTC")
    }

    /// Whether this is [`Zone::UTC`], whose local time is UTC with no lookup.
    pub(crate) fn is_utc(&self) -> bool {
        self.0 == jiff::tz::TimeZone::UTC
    }

    /// The zone's offset from UTC at `instant`.
    pub fn offset_at(&self, instant: &DateTime<Utc>) -> FixedOffset {
        fixed(self.0.to_offset(timestamp(instant)))
    }

    /// `instant` as this zone's local time, or `None` in UTC, where it is written as it is.
    pub(crate) fn local_time(&self, instant: &DateTime<Utc>) -> Option<DateTime<FixedOffset>> {
        (!self.is_utc()).then(|| instant.with_timezone(&self.offset_at(instant)))
    }
}

/// A name the tz database does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not a time zone of the IANA tz database (e.g. `Europe/Moscow`, `UTC`)")]
pub struct UnknownZone {
    /// The name as given.
    pub name: String,
}

impl FromStr for Zone {
    type Err = UnknownZone;

    /// Looks the name up in the bundled database; letter case does not matter, and the zone
    /// keeps the database's spelling.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match TimeZoneDatabase::bundled().get(name) {
            // `Etc/Unknown` names jiff's "unknown" zone, which is not a place's time.
            Ok(zone) if !zone.is_unknown() => Ok(Zone(zone)),
            _ => Err(UnknownZone {
                name: name.to_owned(),
            }),
        }
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A [`Zone`]'s offset at one instant: what a chrono `DateTime<Zone>` carries.
#[derive(Clone, PartialEq, Eq)]
pub struct ZoneOffset {
    zone: Zone,
    offset: FixedOffset,
}

impl chrono::Offset for ZoneOffset {
    fn fix(&self) -> FixedOffset {
        self.offset
    }
}

impl fmt::Debug for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.zone, self.offset)
    }
}

impl fmt::Display for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.offset, f)
    }
}

impl TimeZone for Zone {
    type Offset = ZoneOffset;

    fn from_offset(offset: &ZoneOffset) -> Self {
        offset.zone.clone()
    }

    fn offset_from_local_date(&self, local: &NaiveDate) -> MappedLocalTime<ZoneOffset> {
        self.offset_from_local_datetime(&local.and_time(chrono::NaiveTime::MIN))
    }

    /// One offset; two where clocks went back (the earlier instant's first); none in the hour
    /// skipped when they went forward, or outside the years jiff knows (−9999 to 9999).
    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> MappedLocalTime<ZoneOffset> {
        let Some(civil) = civil(local) else {
            return MappedLocalTime::None;
        };
        let with = |offset: Offset| ZoneOffset {
            zone: self.clone(),
            offset: fixed(offset),
        };
        match self.0.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => MappedLocalTime::Single(with(offset)),
            AmbiguousOffset::Gap { .. } => MappedLocalTime::None,
            AmbiguousOffset::Fold { before, after } => {
                MappedLocalTime::Ambiguous(with(before), with(after))
            }
        }
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> ZoneOffset {
        self.offset_from_utc_datetime(&utc.and_time(chrono::NaiveTime::MIN))
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> ZoneOffset {
        ZoneOffset {
            zone: self.clone(),
            offset: self.offset_at(&utc.and_utc()),
        }
    }
}

/// `instant` as jiff's timestamp; instants beyond jiff's years (−9999 to 9999) are taken at
/// its nearest end, where every zone's offset is its first or last.
fn timestamp(instant: &DateTime<Utc>) -> jiff::Timestamp {
    // A leap second's nanoseconds run past 1e9; jiff has no leap seconds.
    let nanos = instant.timestamp_subsec_nanos().min(999_999_999) as i32;
    jiff::Timestamp::new(instant.timestamp(), nanos).unwrap_or(if instant.timestamp() < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    })
}

/// `local` as jiff's civil date and time, when its year is within jiff's.
fn civil(local: &NaiveDateTime) -> Option<jiff::civil::DateTime> {
    use chrono::{Datelike, Timelike};
    let nanos = local.nanosecond().min(999_999_999) as i32;
    jiff::civil::DateTime::new(
        i16::try_from(local.year()).ok()?,
        local.month() as i8,
        local.day() as i8,
        local.hour() as i8,
        local.minute() as i8,
        local.second() as i8,
        nanos,
    )
    .ok()
}

/// jiff's offset as chrono's. The database's offsets are all within a day, which is chrono's
/// bound; one beyond it would be clamped rather than fail.
fn fixed(offset: Offset) -> FixedOffset {
    const BOUND: i32 = 86_399;
    FixedOffset::east_opt(offset.seconds().clamp(-BOUND, BOUND))
        .unwrap_or_else(|| chrono::Offset::fix(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Offset as _;

    fn zone(name: &str) -> Zone {
        name.parse().unwrap()
    }

    #[test]
    fn names_are_looked_up_in_the_database_and_unknown_ones_refused() {
        assert_eq!(zone("Europe/Moscow").name(), "Europe/Moscow");
        assert_eq!(zone("europe/moscow").name(), "Europe/Moscow");
        assert_eq!(zone("UTC"), Zone::UTC);
        assert_eq!(Zone::UTC.name(), "UTC");
        assert_eq!(Zone::UTC.to_string(), "UTC");
        assert!(zone("UTC").is_utc());
        assert!(!zone("Europe/London").is_utc());
        for bad in ["Mars/Olympus", "", "Etc/Unknown", "Europe/"] {
            let error = bad.parse::<Zone>().unwrap_err();
            assert_eq!(error.name, bad);
            assert!(error.to_string().contains("IANA"), "{error}");
        }
    }

    #[test]
    fn offsets_follow_the_zones_rules() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        // Paris in winter and summer; Kathmandu is +05:45; Moscow was +04:00 in 2012.
        for (name, instant, seconds) in [
            ("Europe/Paris", "2024-01-15T12:00:00Z", 3600),
            ("Europe/Paris", "2024-07-15T12:00:00Z", 7200),
            ("Asia/Kathmandu", "2024-07-15T12:00:00Z", 20_700),
            ("Europe/Moscow", "2012-07-15T12:00:00Z", 14_400),
            ("Europe/Moscow", "2024-07-15T12:00:00Z", 10_800),
        ] {
            let offset = zone(name).offset_at(&at(instant)).local_minus_utc();
            assert_eq!(offset, seconds, "{name} at {instant}");
        }
        // Beyond jiff's years, the nearest end's offset; a leap second is no error.
        assert_eq!(Zone::UTC.offset_at(&DateTime::<Utc>::MAX_UTC), Utc.fix());
        assert_eq!(Zone::UTC.offset_at(&DateTime::<Utc>::MIN_UTC), Utc.fix());
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|day| day.and_hms_nano_opt(23, 59, 59, 1_500_000_000))
            .unwrap()
            .and_utc();
        assert_eq!(
            zone("Europe/Paris").offset_at(&leap).local_minus_utc(),
            3600
        );
    }

    #[test]
    fn a_chrono_date_time_in_the_zone() {
        let new_york = zone("America/New_York");
        let instant = "2024-03-10T12:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let local = instant.with_timezone(&new_york);
        assert_eq!(local.to_rfc3339(), "2024-03-10T08:00:00-04:00");
        assert_eq!(local.timezone(), new_york);
        assert_eq!(format!("{:?}", local.offset()), "America/New_York -04:00");

        // Clocks went forward at 02:00 that day: 02:30 did not happen.
        assert!(matches!(
            new_york.with_ymd_and_hms(2024, 3, 10, 2, 30, 0),
            MappedLocalTime::None
        ));
        // They went back at 02:00 on 3 November: 01:30 happened twice, at -04:00 then -05:00.
        match new_york.with_ymd_and_hms(2024, 11, 3, 1, 30, 0) {
            MappedLocalTime::Ambiguous(first, second) => {
                assert_eq!(first.to_rfc3339(), "2024-11-03T01:30:00-04:00");
                assert_eq!(second.to_rfc3339(), "2024-11-03T01:30:00-05:00");
                assert!(first < second);
            }
            other => panic!("{other:?}"),
        }
        let noon = new_york.with_ymd_and_hms(2024, 7, 4, 12, 0, 0).unwrap();
        assert_eq!(
            noon.with_timezone(&Utc).to_rfc3339(),
            "2024-07-04T16:00:00+00:00"
        );
        // Beyond jiff's years there is no local time to map.
        assert!(matches!(
            new_york.with_ymd_and_hms(20_000, 1, 1, 0, 0, 0),
            MappedLocalTime::None
        ));
    }

    /// Zones with awkward rules (half and quarter hours, DST abolished or moved, a day
    /// skipped), quarterly from 1900 to 2025, have the offsets chrono-tz gives them: two tz
    /// databases, two readers. (Not every zone: the two crates bundle different releases of
    /// the database, which disagree where a release corrected history or rules changed.)
    #[test]
    fn offsets_agree_with_chrono_tz() {
        let zones = [
            "UTC",
            "Europe/Moscow",
            "Europe/Paris",
            "Europe/London",
            "America/New_York",
            "America/Sao_Paulo",
            "America/St_Johns",
            "Asia/Kathmandu",
            "Asia/Kolkata",
            "Asia/Tehran",
            "Australia/Lord_Howe",
            "Pacific/Chatham",
            "Pacific/Apia",
        ];
        let instants: Vec<DateTime<Utc>> = (0..126 * 4)
            .map(|quarter| {
                let seconds = -2_208_988_800 + i64::from(quarter) * 7_889_231 + 43_200;
                DateTime::from_timestamp(seconds, 0).unwrap()
            })
            .collect();
        for name in zones {
            let ours: Zone = name.parse().unwrap();
            let theirs: chrono_tz::Tz = name.parse().unwrap();
            for instant in &instants {
                let expected = instant.with_timezone(&theirs).offset().fix();
                assert_eq!(ours.offset_at(instant), expected, "{name} at {instant}");
                assert_eq!(instant.with_timezone(&ours).offset().fix(), expected);
            }
        }
    }
}
