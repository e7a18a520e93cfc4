//! Unit tests of the load generator's parsing and accounting.

use super::{Histogram, ThreadsCpu};

#[test]
fn thread_cpu_is_read_by_name_and_differenced_per_name() {
    // A named thread that spins for ~30 ms of CPU shows under its name.
    let spin = std::thread::Builder::new()
        .name("lg-test-spin".into())
        .spawn(|| {
            let t = std::time::Instant::now();
            let mut x = 0u64;
            while t.elapsed() < std::time::Duration::from_millis(30) {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            super::threads_cpu(std::process::id()).expect("our own threads")
        })
        .expect("spawn");
    let seen = spin.join().expect("join");
    assert!(seen.contains_key("lg-test-spin"), "{seen:?}");
    assert!(super::threads_cpu(u32::MAX).is_none(), "no such process");

    let before: ThreadsCpu = [("main".to_owned(), 100), ("gone".to_owned(), 50)].into();
    let after: ThreadsCpu = [("main".to_owned(), 350), ("new".to_owned(), 20)].into();
    let delta = super::threads_cpu_delta(Some(before.clone()), Some(after)).expect("delta");
    assert_eq!(
        delta,
        [("main".to_owned(), 250), ("new".to_owned(), 20)].into()
    );
    // A counter that went backwards (a thread of that name ended) is not negative.
    let fewer: ThreadsCpu = [("main".to_owned(), 40)].into();
    let delta = super::threads_cpu_delta(Some(before), Some(fewer)).expect("delta");
    assert_eq!(delta, [("main".to_owned(), 0)].into());
    assert!(super::threads_cpu_delta(None, Some(ThreadsCpu::new())).is_none());
}

#[test]
fn an_ack_is_told_from_a_delivery_of_the_same_message() {
    let ack = r#"{"type":"ack","id":7,"data":{"content":"n=7;t=123","seq":9}}"#;
    let delivery = r#"{"id":"e","type":"event.message.send","level":"message","action":"send","data":{"content":"n=7;t=123"}}"#;
    assert!(super::is_ack(ack));
    assert!(!super::is_ack(delivery));
    assert_eq!(super::parse_payload(delivery), Some((7, 123)));
    assert!(!super::is_ack(r#"42["message","n=7;t=123"]"#));
}

#[test]
fn histogram_buckets_are_within_two_percent_and_quantiles_ordered() {
    for v in [
        0u64,
        1,
        63,
        64,
        65,
        100,
        1_000,
        12_345,
        999_999,
        5_000_000_000,
    ] {
        let back = Histogram::value(Histogram::index(v));
        assert!(back <= v, "{v} -> {back}");
        assert!((v - back) as f64 <= v as f64 * 0.016 + 1.0, "{v} -> {back}");
    }
    let h = Histogram::default();
    assert_eq!(h.quantile(0.5), 0, "empty");
    for v in 1..=1000 {
        h.record(v);
    }
    let (p50, p99, max) = (h.quantile(0.5), h.quantile(0.99), h.quantile(1.0));
    assert!((490..=500).contains(&p50), "{p50}");
    assert!((975..=990).contains(&p99), "{p99}");
    assert!((985..=1000).contains(&max), "{max}");
    assert_eq!(h.count(), 1000);
    h.clear();
    assert_eq!(h.quantile(1.0), 0);
    assert_eq!(h.count(), 0, "a --timeline-ms window starts empty");
}
