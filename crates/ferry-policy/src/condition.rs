//! Condition operators, as the IAM condition-operator and multivalued-key pages define them.
//!
//! - Several values under one key are ORed; for the negated operators (`StringNotEquals`,
//!   `NotIpAddress`, …) they are ANDed: "matches none of them" (T10).
//! - An absent key makes a condition false — except negated operators (true), `…IfExists`
//!   (true), `Null` (tests presence), `ForAllValues` (true) and `ForAnyValue` (false) (T7, T8).
//! - A multivalued key under an operator without a set qualifier does not match (T9), as the
//!   AWS policy simulator answers.
//! - A policy variable without a value makes the condition false (T18).

use std::net::IpAddr;

use crate::ast::{Condition, ConditionValue, OperatorKind, SetQualifier};
use crate::pattern::{ArnGlob, Glob, ValueMatcher, substitute};
use crate::request::{Context, ContextValue};

/// Whether `condition` holds in `context`.
pub fn holds(condition: &Condition, context: &Context) -> bool {
    let op = condition.operator;
    let present = context.get_lower(&condition.key_lower);
    if op.kind == OperatorKind::Null {
        // `"Null": {"k": "true"}` holds when k is absent; `"false"` when present.
        return condition
            .values
            .iter()
            .any(|v| v.text.eq_ignore_ascii_case("true") == present.is_none());
    }
    let Some(value) = present else {
        return match op.set {
            SetQualifier::ForAllValues => true,
            SetQualifier::ForAnyValue => false,
            SetQualifier::None => op.if_exists || op.kind.is_negated(),
        };
    };
    if condition.values.iter().any(|v| v.has_variables) {
        // Substitute once per evaluation; a variable without a value fails the condition.
        let mut resolved = Vec::with_capacity(condition.values.len());
        for v in &condition.values {
            match v.has_variables.then(|| substitute(&v.text, context)) {
                None => resolved.push(PolicyValue {
                    text: v.text.as_str().into(),
                    matcher: v.glob.as_ref(),
                }),
                Some(Some(text)) => resolved.push(PolicyValue {
                    text: text.into(),
                    matcher: None,
                }),
                Some(None) => return false,
            }
        }
        return with_values(op.set, op.kind, &resolved, value);
    }
    // The common case borrows everything: no allocation.
    with_values(op.set, op.kind, &condition.values, value)
}

fn with_values<V: Compare>(
    set: SetQualifier,
    kind: OperatorKind,
    values: &[V],
    value: &ContextValue,
) -> bool {
    match (set, value) {
        (SetQualifier::None, ContextValue::Single(v)) => single(kind, values, v),
        (SetQualifier::None, ContextValue::Multi(_)) => false,
        (SetQualifier::ForAnyValue, value) => {
            value.values().iter().any(|v| single(kind, values, v))
        }
        (SetQualifier::ForAllValues, value) => {
            value.values().iter().all(|v| single(kind, values, v))
        }
    }
}

/// A policy value: its text, and its compiled pattern when it has one.
trait Compare {
    fn text(&self) -> &str;
    fn matcher(&self) -> Option<&ValueMatcher>;
}

impl Compare for ConditionValue {
    fn text(&self) -> &str {
        &self.text
    }
    fn matcher(&self) -> Option<&ValueMatcher> {
        self.glob.as_ref()
    }
}

/// A value after variable substitution.
struct PolicyValue<'a> {
    text: std::borrow::Cow<'a, str>,
    matcher: Option<&'a ValueMatcher>,
}

impl Compare for PolicyValue<'_> {
    fn text(&self) -> &str {
        &self.text
    }
    fn matcher(&self) -> Option<&ValueMatcher> {
        self.matcher
    }
}

/// One request value against the policy's values.
fn single<V: Compare>(kind: OperatorKind, values: &[V], request: &str) -> bool {
    use OperatorKind::*;
    let any = |f: &dyn Fn(&V) -> bool| values.iter().any(f);
    match kind {
        StringEquals => any(&|v| v.text() == request),
        StringNotEquals => !any(&|v| v.text() == request),
        StringEqualsIgnoreCase => any(&|v| eq_ignore_case(v.text(), request)),
        StringNotEqualsIgnoreCase => !any(&|v| eq_ignore_case(v.text(), request)),
        StringLike => any(&|v| like(v, request)),
        StringNotLike => !any(&|v| like(v, request)),
        NumericEquals => any(&|v| numeric(v.text(), request, |a, b| a == b)),
        NumericNotEquals => !any(&|v| numeric(v.text(), request, |a, b| a == b)),
        NumericLessThan => any(&|v| numeric(v.text(), request, |p, r| r < p)),
        NumericLessThanEquals => any(&|v| numeric(v.text(), request, |p, r| r <= p)),
        NumericGreaterThan => any(&|v| numeric(v.text(), request, |p, r| r > p)),
        NumericGreaterThanEquals => any(&|v| numeric(v.text(), request, |p, r| r >= p)),
        DateEquals => any(&|v| date(v.text(), request, |p, r| p == r)),
        DateNotEquals => !any(&|v| date(v.text(), request, |p, r| p == r)),
        DateLessThan => any(&|v| date(v.text(), request, |p, r| r < p)),
        DateLessThanEquals => any(&|v| date(v.text(), request, |p, r| r <= p)),
        DateGreaterThan => any(&|v| date(v.text(), request, |p, r| r > p)),
        DateGreaterThanEquals => any(&|v| date(v.text(), request, |p, r| r >= p)),
        Bool => any(&|v| v.text().eq_ignore_ascii_case(request)),
        BinaryEquals => any(&|v| v.text() == request),
        IpAddress => any(&|v| in_cidr(v.text(), request)),
        NotIpAddress => !any(&|v| in_cidr(v.text(), request)),
        ArnEquals | ArnLike => any(&|v| arn_like(v, request)),
        ArnNotEquals | ArnNotLike => !any(&|v| arn_like(v, request)),
        Null => false,
    }
}

fn eq_ignore_case(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.to_lowercase() == b.to_lowercase()
    }
}

fn like<V: Compare>(v: &V, request: &str) -> bool {
    match v.matcher() {
        Some(m) => m.matches(request),
        None => Glob::new(v.text(), false).matches(request),
    }
}

fn arn_like<V: Compare>(v: &V, request: &str) -> bool {
    match v.matcher() {
        Some(m) => m.matches(request),
        None => ArnGlob::new(v.text()).matches(request),
    }
}

fn numeric(policy: &str, request: &str, cmp: impl Fn(f64, f64) -> bool) -> bool {
    match (policy.trim().parse::<f64>(), request.trim().parse::<f64>()) {
        (Ok(p), Ok(r)) => cmp(p, r),
        _ => false,
    }
}

/// Seconds (with fraction) since the epoch: ISO 8601 date-times, plain dates, or epoch seconds.
pub fn parse_date(text: &str) -> Option<f64> {
    let text = text.trim();
    if let Ok(n) = text.parse::<f64>() {
        return Some(n);
    }
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Some(ts.as_millisecond() as f64 / 1000.0);
    }
    // Without an offset, AWS reads times as UTC.
    let utc = jiff::tz::TimeZone::UTC;
    if let Ok(dt) = text.parse::<jiff::civil::DateTime>() {
        return utc
            .to_timestamp(dt)
            .ok()
            .map(|t| t.as_millisecond() as f64 / 1000.0);
    }
    text.parse::<jiff::civil::Date>()
        .ok()
        .and_then(|d| {
            utc.to_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
                .ok()
        })
        .map(|t| t.as_second() as f64)
}

fn date(policy: &str, request: &str, cmp: impl Fn(f64, f64) -> bool) -> bool {
    match (parse_date(policy), parse_date(request)) {
        (Some(p), Some(r)) => cmp(p, r),
        _ => false,
    }
}

/// Whether `ip` lies in `cidr` (an address without a prefix is a /32 or /128).
pub fn in_cidr(cidr: &str, ip: &str) -> bool {
    let (net, prefix) = match cidr.trim().split_once('/') {
        Some((n, p)) => (n, p.parse::<u32>().ok()),
        None => (cidr.trim(), None),
    };
    let ip = ip.trim().split('/').next().unwrap_or_default();
    match (net.parse::<IpAddr>(), ip.parse::<IpAddr>()) {
        (Ok(IpAddr::V4(n)), Ok(IpAddr::V4(i))) => {
            let prefix = prefix.unwrap_or(32).min(32);
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (Ok(IpAddr::V6(n)), Ok(IpAddr::V6(i))) => {
            let prefix = prefix.unwrap_or(128).min(128);
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_str;

    fn cond(json: &str, ctx: &Context) -> bool {
        let p = parse_str(&format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{json}}}]}}"#)).unwrap();
        p.statements[0].conditions.iter().all(|c| holds(c, ctx))
    }

    fn ctx(pairs: &[(&str, &str)]) -> Context {
        Context::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn absent_keys_follow_the_operator_family() {
        let empty = Context::default();
        assert!(!cond(r#"{"StringEquals":{"aws:x":"a"}}"#, &empty));
        assert!(cond(r#"{"StringNotEquals":{"aws:x":"a"}}"#, &empty));
        assert!(cond(r#"{"StringEqualsIfExists":{"aws:x":"a"}}"#, &empty));
        assert!(cond(r#"{"Null":{"aws:x":"true"}}"#, &empty));
        assert!(cond(
            r#"{"ForAllValues:StringEquals":{"aws:TagKeys":"a"}}"#,
            &empty
        ));
        assert!(!cond(
            r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":"a"}}"#,
            &empty
        ));
    }

    #[test]
    fn values_are_ored_and_negated_operators_and_them() {
        let c = ctx(&[("aws:x", "b")]);
        assert!(cond(r#"{"StringEquals":{"aws:x":["a","b"]}}"#, &c));
        assert!(!cond(r#"{"StringNotEquals":{"aws:x":["a","b"]}}"#, &c));
        assert!(cond(r#"{"StringNotEquals":{"aws:x":["a","c"]}}"#, &c));
        assert!(cond(r#"{"StringEqualsIgnoreCase":{"AWS:X":"B"}}"#, &c));
        assert!(cond(r#"{"StringLike":{"aws:x":"?"}}"#, &c));
    }

    #[test]
    fn multivalued_keys_need_a_set_qualifier() {
        let mut c = Context::default();
        c.insert(
            "aws:TagKeys",
            ContextValue::Multi(vec!["a".into(), "b".into()]),
        );
        assert!(!cond(r#"{"StringEquals":{"aws:TagKeys":"a"}}"#, &c));
        assert!(cond(
            r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":"a"}}"#,
            &c
        ));
        assert!(!cond(
            r#"{"ForAllValues:StringEquals":{"aws:TagKeys":"a"}}"#,
            &c
        ));
        assert!(cond(
            r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["a","b","c"]}}"#,
            &c
        ));
    }

    #[test]
    fn numbers_dates_booleans_addresses_and_arns() {
        let c = ctx(&[
            ("n", "10"),
            ("aws:CurrentTime", "2024-06-01T12:00:00Z"),
            ("aws:SecureTransport", "false"),
            ("aws:SourceIp", "203.0.113.7"),
            ("aws:SourceArn", "arn:aws:s3:::bucket"),
        ]);
        assert!(cond(
            r#"{"NumericLessThan":{"n":"11"},"NumericGreaterThanEquals":{"n":"10.0"}}"#,
            &c
        ));
        assert!(cond(
            r#"{"DateGreaterThan":{"aws:CurrentTime":"2024-01-01"}}"#,
            &c
        ));
        assert!(cond(
            r#"{"DateLessThan":{"aws:CurrentTime":"1717243300"}}"#,
            &c
        ));
        assert!(cond(r#"{"Bool":{"aws:SecureTransport":"FALSE"}}"#, &c));
        assert!(cond(
            r#"{"IpAddress":{"aws:SourceIp":["198.51.100.0/24","203.0.113.0/24"]}}"#,
            &c
        ));
        assert!(!cond(
            r#"{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#,
            &c
        ));
        assert!(cond(
            r#"{"ArnLike":{"aws:SourceArn":"arn:aws:s3:::b*"}}"#,
            &c
        ));
        assert!(in_cidr("2001:db8::/32", "2001:db8:1::1"));
    }

    #[test]
    fn unresolved_variables_make_the_condition_false() {
        let c = ctx(&[("s3:prefix", "home/alice/")]);
        assert!(!cond(
            r#"{"StringLike":{"s3:prefix":"home/${aws:username}/*"}}"#,
            &c
        ));
        let c = ctx(&[("s3:prefix", "home/alice/"), ("aws:username", "alice")]);
        assert!(cond(
            r#"{"StringLike":{"s3:prefix":"home/${aws:username}/*"}}"#,
            &c
        ));
    }
}
