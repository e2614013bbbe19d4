//! Table-driven tests of the gating rule, driving results through `observe`, `decide` and
//! `remember` the way the reaction router does.
//!
//! Steps are written as tokens: an optional method (`m` manual, `w` webhook, none automatic),
//! an outcome (`h` healthy, `f` failed, `u` unknown) and an optional time `@SECS`; a step
//! without a time comes 10 s after the one before, the first at 0 s.

use time::{Duration, OffsetDateTime};

use super::{
    Applied, Decision, Firing, GateRule, Observation, Phase, StatusChange, attach, decide, observe,
    remember,
};
use crate::model::{
    CallOn, CheckOutcome, Method, MonitorId, MonitorState, ReactionId, Status, Timestamp,
};

fn at(secs: i64) -> Timestamp {
    OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap() + Duration::seconds(secs)
}

fn rule(trigger: u32, frequency_secs: u64, call_on: CallOn) -> GateRule {
    GateRule { trigger, frequency_secs, call_on }
}

/// A monitor's state and its reactions, fed one result at a time like the router does.
struct Sim {
    state: MonitorState,
    rules: Vec<(ReactionId, GateRule)>,
    clock: i64,
    /// False simulates claims that fail (Redis down): firings are offered but not remembered.
    claims_succeed: bool,
}

impl Sim {
    fn new(rules: &[GateRule]) -> Self {
        let rules = rules
            .iter()
            .enumerate()
            .map(|(index, rule)| (ReactionId::from(format!("r{index}")), *rule))
            .collect();
        Self { state: MonitorState::default(), rules, clock: -10, claims_succeed: true }
    }

    /// Applies one step; returns what `observe` made of it and each reaction's decision.
    fn step(&mut self, token: &str) -> (Applied, Vec<Decision>) {
        let (result, secs) = match token.split_once('@') {
            Some((result, secs)) => (result, secs.parse().unwrap()),
            None => (token, self.clock + 10),
        };
        self.clock = secs;
        let (method, outcome) = match result.len() {
            1 => (Method::Automatic, result),
            _ => match &result[..1] {
                "m" => (Method::Manual, &result[1..]),
                "w" => (Method::Webhook, &result[1..]),
                other => panic!("unknown method `{other}` in `{token}`"),
            },
        };
        let reason = format!("step {token}");
        let outcome = match outcome {
            "h" => CheckOutcome::Healthy { reason },
            "f" => CheckOutcome::Failed { reason },
            "u" => CheckOutcome::Unknown { reason },
            other => panic!("unknown outcome `{other}` in `{token}`"),
        };
        let now = at(secs);
        let observation = Observation { outcome, method, at: now, node: "node-1".into() };
        let applied = observe(&self.state, &observation);
        let mut next = applied.state.clone();
        let mut decisions = Vec::new();
        for (id, rule) in &self.rules {
            let memory = next.reactions.get(id).cloned().unwrap_or_default();
            let decision = decide(rule, &memory, &applied, now);
            if let (Decision::Fire(firing), true) = (&decision, self.claims_succeed) {
                remember(next.reactions.entry(id.clone()).or_default(), firing, now);
            }
            decisions.push(decision);
        }
        self.state = next;
        (applied, decisions)
    }

    /// Runs `steps` and returns the first reaction's firings: `-` for none, `F<episode>.<window>`
    /// for a failure firing, `R<episode>` for a recovery firing.
    fn firings(&mut self, steps: &str) -> String {
        let marks = steps.split_whitespace().map(|token| mark(&self.step(token).1[0]));
        marks.collect::<Vec<_>>().join(" ")
    }
}

fn mark(decision: &Decision) -> String {
    match decision {
        Decision::Hold(_) => "-".into(),
        Decision::Fire(Firing { phase: Phase::Failed, episode, window }) => {
            format!("F{episode}.{window}")
        }
        Decision::Fire(Firing { phase: Phase::Recovery, episode, window: _ }) => {
            format!("R{episode}")
        }
    }
}

/// Returns `<status><streak>e<episode>`, with `!` while a manual failure holds.
fn snapshot(state: &MonitorState) -> String {
    let status = &state.status.as_str()[..1];
    let hold = if state.manual_hold { "!" } else { "" };
    format!("{status}{}e{}{hold}", state.streak, state.episode)
}

#[test]
fn observe_counts_streaks_and_episodes() {
    let cases = [
        ("healthy streak counts up", "h h h", "h1e0 h2e0 h3e0"),
        ("failed streak counts up", "f f f", "f1e1 f2e1 f3e1"),
        ("a change resets the streak", "h h f f h", "h1e0 h2e0 f1e1 f2e1 h1e1"),
        ("each change to failed is an episode", "f h f h f", "f1e1 h1e1 f1e2 h1e2 f1e3"),
        ("unknown -> failed starts episode 1", "f", "f1e1"),
        ("unknown -> healthy starts no episode", "h", "h1e0"),
        ("unknown outcomes change nothing", "u u h u h", "u0e0 u0e0 h1e0 h1e0 h2e0"),
        ("unknown does not break a streak", "f u f u f", "f1e1 f1e1 f2e1 f2e1 f3e1"),
        ("unknown does not end an episode", "f u u f", "f1e1 f1e1 f1e1 f2e1"),
        ("webhook counts like automatic", "wf wf wh h", "f1e1 f2e1 h1e1 h2e1"),
        ("manual fail sets the hold", "h mf", "h1e0 f1e1!"),
        ("automatic results do not count during a hold", "mf f h h", "f1e1! f1e1! f1e1! f1e1!"),
        ("webhook results do not count during a hold", "mf wh wf", "f1e1! f1e1! f1e1!"),
        ("unknown results during a hold change nothing", "mf u mu", "f1e1! f1e1! f1e1!"),
        ("manual fail of a failed monitor keeps the episode", "f f mf", "f1e1 f2e1 f3e1!"),
        ("manual heal clears the hold", "mf h mh h f", "f1e1! f1e1! h1e1 h2e1 f1e2"),
        ("manual heal of a healthy monitor counts", "h mh", "h1e0 h2e0"),
    ];
    for (name, steps, expected) in cases {
        let mut sim = Sim::new(&[]);
        let got: Vec<String> =
            steps.split_whitespace().map(|token| snapshot(&sim.step(token).0.state)).collect();
        assert_eq!(got.join(" "), expected, "{name}: {steps}");
    }
}

#[test]
fn observe_reports_changes_and_what_it_did_not_count() {
    let mut sim = Sim::new(&[]);
    let (applied, _) = sim.step("h@5");
    assert_eq!(applied.change, Some(StatusChange { prev: Status::Unknown, new: Status::Healthy }));
    assert!(applied.counted);
    assert_eq!(applied.state.last_change_at, Some(at(5)));
    let (applied, _) = sim.step("h@15");
    assert_eq!(applied.change, None);
    assert_eq!(applied.state.last_change_at, Some(at(5)), "no change, no change time");
    assert_eq!(applied.state.last_check_at, Some(at(15)));
    let (applied, _) = sim.step("u@25");
    assert!(!applied.counted, "unknown is recorded, not counted");
    assert_eq!(applied.state.last_check_at, Some(at(25)), "unknown results are still recorded");
    assert_eq!(applied.state.last_reason.as_deref(), Some("step u@25"));
    assert_eq!(applied.state.owner.as_deref(), Some("node-1"));
    let (applied, _) = sim.step("mf@35");
    assert_eq!(applied.method, Method::Manual);
    assert!(applied.counted && applied.change.is_some());
    let (applied, _) = sim.step("h@45");
    assert!(!applied.counted, "held: recorded, not counted");
    assert_eq!(applied.change, None);
    assert_eq!(applied.state.last_check_at, Some(at(45)));
}

#[test]
fn decide_follows_the_gating_rule() {
    use CallOn::{Both, Failed, Healthy};
    #[rustfmt::skip]
    let cases = [
        // name, rule, steps, firings of that rule
        ("trigger 1 fires on the first failure", rule(1, 0, Failed), "h f f", "- F1.1 -"),
        ("trigger 0 acts as 1", rule(0, 0, Failed), "h f f", "- F1.1 -"),
        ("trigger 3 fires on the 3rd failure, not before", rule(3, 0, Failed), "f f f f f", "- - F1.1 - -"),
        ("a broken streak starts over", rule(3, 0, Failed), "f f h f f f", "- - - - - F2.1"),
        ("unknown results neither count nor break", rule(2, 0, Failed), "f u u f", "- - - F1.1"),
        ("frequency 0 is once per episode", rule(1, 0, Failed), "f f f h f f", "F1.1 - - - F2.1 -"),
        ("frequency 0 with a trigger, per episode", rule(2, 0, Failed), "f f f h h f f", "- F1.1 - - - - F2.1"),
        ("frequency 600 re-fires after 600 s, not before", rule(1, 600, Failed),
            "f@0 f@300 f@599 f@600 f@900 f@1199 f@1200", "F1.1 - - F1.2 - - F1.3"),
        ("the frequency window counts from the last firing", rule(1, 600, Failed),
            "f@0 f@650 f@1200 f@1250", "F1.1 F1.2 - F1.3"),
        ("a new episode starts the windows over", rule(1, 600, Failed),
            "f@0 f@600 h@700 f@710 f@720", "F1.1 F1.2 - F2.1 -"),
        ("failure reactions ignore recoveries", rule(1, 0, Failed), "f h h", "F1.1 - -"),
        ("recovery fires once on the first healthy result", rule(1, 0, Healthy), "f h h h", "- R1 - -"),
        ("recovery trigger 3 waits for 3 healthy results", rule(3, 0, Healthy), "f f h h h h", "- - - - R1 -"),
        ("a broken recovery starts over", rule(3, 0, Healthy), "f h h f h h h", "- - - - - - R2"),
        ("a monitor that never failed fires no recovery", rule(1, 0, Healthy), "h h u h", "- - - -"),
        ("no recovery from unknown", rule(0, 0, Healthy), "u h", "- -"),
        ("one recovery per episode", rule(1, 0, Healthy), "f h h f f h h", "- R1 - - - R2 -"),
        ("recovery reactions ignore failures", rule(1, 600, Healthy), "f@0 f@700 h@800", "- - R1"),
        ("both follows both rules", rule(2, 0, Both), "f f f h h h f h", "- F1.1 - - R1 - - -"),
        ("both re-fires by frequency", rule(1, 60, Both), "f@0 f@60 h@70 f@80", "F1.1 F1.2 R1 F2.1"),
        ("manual fail ignores the trigger", rule(5, 0, Failed), "h mf", "- F1.1"),
        ("manual fail ignores the latch", rule(1, 0, Failed), "f mf mf", "F1.1 F1.2 F1.3"),
        ("results during a hold fire nothing", rule(1, 60, Failed), "mf@0 f@100 f@200 wf@300", "F1.1 - - -"),
        ("healthy results during a hold fire nothing", rule(1, 0, Both), "mf h wh h", "F1.1 - - -"),
        ("manual heal fires recoveries, ignoring the trigger", rule(5, 0, Healthy), "mf h h mh h", "- - - R1 -"),
        ("after a manual heal, results count again", rule(2, 0, Both), "mf mh f f", "F1.1 R1 - F2.1"),
        ("manual heal of an answered recovery fires nothing", rule(1, 0, Healthy), "f h mh", "- R1 -"),
        ("manual heal of a never-failed monitor fires nothing", rule(1, 0, Healthy), "h mh", "- -"),
        ("webhook results count like automatic ones", rule(2, 0, Both), "wf wf wf wh wh", "- F1.1 - - R1"),
        ("webhook results wait out frequency", rule(1, 600, Failed), "wf@0 wf@599 wf@600", "F1.1 - F1.2"),
    ];
    for (name, rule, steps, expected) in cases {
        let got = Sim::new(&[rule]).firings(steps);
        assert_eq!(got, expected, "{name}: {rule:?} on `{steps}`");
    }
}

#[test]
fn reactions_on_one_monitor_keep_separate_memories() {
    let rules =
        [rule(1, 0, CallOn::Failed), rule(3, 0, CallOn::Failed), rule(2, 0, CallOn::Healthy)];
    let mut sim = Sim::new(&rules);
    let mut table = Vec::new();
    for token in ["f", "f", "f", "h", "h", "h"] {
        table.push(sim.step(token).1.iter().map(mark).collect::<Vec<_>>().join(","));
    }
    assert_eq!(table, ["F1.1,-,-", "-,-,-", "-,F1.1,-", "-,-,-", "-,-,R1", "-,-,-"]);
}

#[test]
fn firing_keys_name_monitor_reaction_episode_phase_and_window() {
    let (monitor, reaction) = (MonitorId::from("m1"), ReactionId::from("r1"));
    let failed = Firing { phase: Phase::Failed, episode: 4, window: 2 };
    assert_eq!(failed.key(&monitor, &reaction), "m1:r1:4:failed:2");
    let recovery = Firing { phase: Phase::Recovery, episode: 4, window: 1 };
    assert_eq!(recovery.key(&monitor, &reaction), "m1:r1:4:recovery:1");
}

#[test]
fn re_firings_get_a_new_key_each_window() {
    let mut sim = Sim::new(&[rule(1, 600, CallOn::Failed)]);
    let (monitor, reaction) = (MonitorId::from("m"), ReactionId::from("r0"));
    let mut keys = Vec::new();
    for token in ["f@0", "f@300", "f@600", "f@1200", "h@1300", "f@1310"] {
        if let Decision::Fire(firing) = &sim.step(token).1[0] {
            keys.push(firing.key(&monitor, &reaction));
        }
    }
    assert_eq!(keys, ["m:r0:1:failed:1", "m:r0:1:failed:2", "m:r0:1:failed:3", "m:r0:2:failed:1"]);
}

#[test]
fn a_firing_whose_claim_failed_is_offered_again_with_the_same_firing() {
    // The router remembers a firing only once its claim is written. When claims fail (Redis
    // down), later results must offer the same firing (same key) again until one succeeds,
    // and then never again in that episode.
    #[rustfmt::skip]
    let cases = [
        // rule, steps while claims fail, offered, steps once they succeed, fired
        (rule(2, 0, CallOn::Failed), "f f f f", "- F1.1 F1.1 F1.1", "f f f", "F1.1 - -"),
        (rule(2, 0, CallOn::Healthy), "f h h h", "- - R1 R1", "h h h", "R1 - -"),
        (rule(1, 600, CallOn::Failed), "f@0 f@10 f@700", "F1.1 F1.1 F1.1",
            "f@710 f@720 f@1310", "F1.1 - F1.2"),
    ];
    for (rule, while_failing, offered, then, fired) in cases {
        let mut sim = Sim::new(&[rule]);
        sim.claims_succeed = false;
        assert_eq!(sim.firings(while_failing), offered, "{rule:?} while claims fail");
        sim.claims_succeed = true;
        assert_eq!(sim.firings(then), fired, "{rule:?} once claims succeed");
    }
}

#[test]
fn lowering_a_recovery_trigger_mid_recovery_still_fires_once() {
    let mut sim = Sim::new(&[rule(5, 0, CallOn::Healthy)]);
    assert_eq!(sim.firings("f h h h"), "- - - -");
    sim.rules[0].1.trigger = 2;
    assert_eq!(sim.firings("h h h"), "R1 - -");
}

#[test]
fn a_recovery_needs_a_counted_healthy_result() {
    let applied = observe(
        &MonitorState::default(),
        &Observation {
            outcome: CheckOutcome::Unknown { reason: "timeout".into() },
            method: Method::Automatic,
            at: at(0),
            node: "node-1".into(),
        },
    );
    let decision = decide(&rule(1, 0, CallOn::Both), &Default::default(), &applied, at(0));
    assert!(matches!(decision, Decision::Hold(_)));
}

#[test]
fn attaching_a_reaction_never_fires_for_a_past_recovery() {
    use CallOn::{Both, Failed, Healthy};
    #[rustfmt::skip]
    let cases = [
        // name, steps before attaching, rule attached, steps after, firings after
        ("after a recovery: no late recovery firing", "f h h h", rule(1, 0, Healthy), "h h", "- -"),
        ("after a recovery: the next one fires", "f h h", rule(1, 0, Healthy), "h f h", "- - R2"),
        ("during a failure: fires on the next failure", "h f f", rule(1, 0, Failed), "f", "F1.1"),
        ("during a failure: its recovery fires", "h f f", rule(1, 0, Both), "f h", "F1.1 R1"),
        ("never failed: a first recovery fires", "h h", rule(1, 0, Healthy), "f h", "- R1"),
        ("fresh monitor", "", rule(1, 0, Both), "f h", "F1.1 R1"),
    ];
    for (name, before, rule, after, expected) in cases {
        let mut sim = Sim::new(&[]);
        for token in before.split_whitespace() {
            sim.step(token);
        }
        let id = ReactionId::from("late");
        attach(&mut sim.state, &id);
        sim.rules.push((id, rule));
        assert_eq!(sim.firings(after), expected, "{name}: {before} | attach {rule:?} | {after}");
    }
}

#[test]
fn attaching_keeps_existing_memory() {
    let mut sim = Sim::new(&[rule(1, 0, CallOn::Healthy)]);
    sim.firings("f h");
    let id = ReactionId::from("r0");
    let before = sim.state.reactions.get(&id).cloned();
    attach(&mut sim.state, &id);
    assert_eq!(sim.state.reactions.get(&id).cloned(), before);
}
