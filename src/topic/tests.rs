use super::*;

#[test]
fn mqtt_4_7_1_2_hash_must_be_last_and_whole_level() {
    assert!(valid_topic_filter("#"));
    assert!(valid_topic_filter("sport/tennis/#"));
    assert!(!valid_topic_filter("sport/tennis#"));
    assert!(!valid_topic_filter("sport/tennis/#/ranking"));
}

#[test]
fn mqtt_4_7_1_3_plus_whole_level() {
    assert!(valid_topic_filter("+"));
    assert!(valid_topic_filter("+/tennis/#"));
    assert!(valid_topic_filter("sport/+/player1"));
    assert!(!valid_topic_filter("sport+"));
    assert!(valid_topic_filter("/+"));
}

#[test]
fn mqtt_4_7_3_1_empty_is_invalid() {
    assert!(!valid_topic_filter(""));
    assert!(!valid_topic_name(""));
}

#[test]
fn mqtt_3_3_2_2_no_wildcards_in_names() {
    assert!(!valid_topic_name("a/+"));
    assert!(!valid_topic_name("a/#"));
    assert!(valid_topic_name("ESP32/TEM"));
    assert!(valid_topic_name("/"));
}

#[test]
fn spec_examples_4_7_1_2() {
    assert!(matches("sport/tennis/player1/#", "sport/tennis/player1"));
    assert!(matches(
        "sport/tennis/player1/#",
        "sport/tennis/player1/ranking"
    ));
    assert!(matches(
        "sport/tennis/player1/#",
        "sport/tennis/player1/score/wimbledon"
    ));
    assert!(matches("sport/#", "sport"));
}

#[test]
fn spec_examples_4_7_1_3() {
    assert!(matches("sport/tennis/+", "sport/tennis/player1"));
    assert!(!matches("sport/tennis/+", "sport/tennis/player1/ranking"));
    assert!(!matches("sport/+", "sport"));
    assert!(matches("sport/+", "sport/"));
    assert!(matches("+/+", "/finance"));
    assert!(matches("/+", "/finance"));
    assert!(!matches("+", "/finance"));
}

#[test]
fn mqtt_4_7_2_1_dollar_topics_not_matched_by_leading_wildcard() {
    assert!(!matches("#", "$SYS/broker/uptime"));
    assert!(!matches("+/broker/uptime", "$SYS/broker/uptime"));
    assert!(matches("$SYS/#", "$SYS/broker/uptime"));
    assert!(matches("$SYS/broker/+", "$SYS/broker/uptime"));
    assert!(matches("ESP32/#", "ESP32/TEM"));
}

#[test]
fn levels_are_bounded_like_mosquitto() {
    // mosquitto's TOPIC_HIERARCHY_LIMIT: 200 separators pass, 201 do not.
    let at_limit = "a/".repeat(200) + "a";
    let beyond = "a/".repeat(201) + "a";
    assert_eq!(at_limit.split('/').count(), TOPIC_LEVELS_MAX);
    assert!(valid_topic_filter(&at_limit) && depth_within_limit(&at_limit));
    assert!(!valid_topic_filter(&(at_limit.clone() + "/#")));
    assert!(valid_topic_filter(&("a/".repeat(200) + "#")));
    assert!(!valid_topic_filter(&beyond) && !depth_within_limit(&beyond));
    assert!(
        valid_topic_name(&beyond),
        "the codec leaves depth to the broker"
    );
}
