use super::matches;

#[test]
fn topic_matching_follows_the_spec() {
    let cases = [
        ("ESP32/#", "ESP32/TEM", true),
        ("ESP32/#", "ESP32", true),
        ("ESP32/#", "ESP32/a/b", true),
        ("ESP32/#", "ESP321/a", false),
        ("#", "a/b", true),
        ("#", "/", true),
        ("+", "a", true),
        ("+", "a/b", false),
        ("+", "", true),
        ("+/+", "/finance", true),
        ("/+", "/finance", true),
        ("+", "/finance", false),
        ("a/+/c", "a/b/c", true),
        ("a/+/c", "a//c", true),
        ("a/+/c", "a/b/d", false),
        ("a/b", "a/b", true),
        ("a/b", "a/b/", false),
        ("a/b", "A/b", false),
        ("#", "$SYS/x", false),
        ("+/x", "$SYS/x", false),
        ("$SYS/#", "$SYS/broker/load", true),
        ("$SYS/+", "$SYS/x", true),
    ];
    for (filter, topic, want) in cases {
        assert_eq!(matches(filter, topic), want, "{filter} vs {topic}");
    }
}
