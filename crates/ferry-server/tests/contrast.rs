//! The dashboard's colours pass WCAG AA (4.5:1 for text) on the backgrounds they are used on,
//! in the light scheme and the dark one: read from the stylesheet itself, so a colour changed
//! there is checked here.

const CSS: &str = include_str!("../src/ui/assets/app.css");

/// Text colour → the backgrounds it is shown on, by custom property name.
const PAIRS: &[(&str, &str)] = &[
    ("fg", "bg"),
    ("fg", "panel"),
    ("muted", "bg"),
    ("muted", "panel"),
    ("link", "bg"),
    ("button-fg", "button"),
    ("ok", "ok-bg"),
    ("bad", "bad-bg"),
    ("run", "run-bg"),
    ("wait", "wait-bg"),
    ("idle", "idle-bg"),
    ("bg", "bad"),
];

/// The `--name: #rrggbb` properties of the first block that follows `marker`.
fn scheme(marker: &str) -> Vec<(String, String)> {
    let start = CSS.find(marker).expect("the scheme's block");
    let block = &CSS[start..];
    let block = &block[..block.find('}').unwrap()];
    block
        .split(';')
        .filter_map(|decl| {
            let (name, value) = decl.rsplit_once(':')?;
            let name = name.rsplit(['{', ' ', '\n']).next()?.strip_prefix("--")?;
            let value = value.trim();
            value
                .starts_with('#')
                .then(|| (name.to_owned(), value.to_owned()))
        })
        .collect()
}

fn luminance(hex: &str) -> f64 {
    let channel = |i: usize| {
        let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap()) / 255.0;
        if c <= 0.039_28 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
}

fn contrast(a: &str, b: &str) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

#[test]
fn text_colours_pass_wcag_aa_in_both_schemes() {
    // Each scheme's block, found by how it begins.
    for (marker, start) in [
        ("light", ":root {\n  --bg: #ffffff"),
        ("dark", ":root {\n    --bg: #0d1117"),
    ] {
        let colours = scheme(start);
        let get = |name: &str| {
            colours
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("--{name} in {marker}: {colours:?}"))
        };
        for (fg, bg) in PAIRS {
            let ratio = contrast(get(fg), get(bg));
            assert!(ratio >= 4.5, "{marker}: --{fg} on --{bg} is {ratio:.2}:1");
        }
    }
}
