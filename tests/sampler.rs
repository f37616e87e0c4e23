use pocketllm::sampler::{Rng, Sampler, SamplerParams, apply_penalties, argmax, top_candidates};
use std::collections::{BTreeMap, BTreeSet};

fn params(f: impl FnOnce(&mut SamplerParams)) -> SamplerParams {
    let mut p = SamplerParams::default();
    f(&mut p);
    p.validate().unwrap();
    p
}

/// Pseudo-random logits in [-4, 4) from the crate's own generator.
fn random_logits(n: usize, seed: u64) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..n).map(|_| (r.next_f64() * 8.0 - 4.0) as f32).collect()
}

/// Logits whose softmax is exactly proportional to `weights` (up to rounding).
fn logits_for(weights: &[f64]) -> Vec<f32> {
    weights.iter().map(|w| w.ln() as f32).collect()
}

/// Which tokens come out, and how often, over `n` draws from one sampler.
fn draw(p: SamplerParams, logits: &[f32], n: usize) -> BTreeMap<u32, usize> {
    let mut s = Sampler::new(p);
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        *seen.entry(s.sample(logits, &[])).or_insert(0) += 1;
    }
    seen
}

fn set(seen: &BTreeMap<u32, usize>) -> BTreeSet<u32> {
    seen.keys().copied().collect()
}

#[test]
fn argmax_takes_the_lowest_id_on_ties_and_skips_nan() {
    assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
    assert_eq!(argmax(&[f32::NAN, -1.0, f32::NAN, -0.5]), 3);
    assert_eq!(argmax(&[f32::NEG_INFINITY, f32::NEG_INFINITY]), 0);
    assert_eq!(argmax(&[]), 0);
    assert_eq!(argmax(&[f32::NAN]), 0);
}

#[test]
fn greedy_is_argmax() {
    let mut s = Sampler::new(SamplerParams::default());
    for seed in 0..50 {
        let l = random_logits(1000, seed);
        assert_eq!(s.sample(&l, &[1, 2, 3]), argmax(&l));
    }
    // Ties: lowest id, as llama.cpp's goldens.
    assert_eq!(s.sample(&[0.5, 2.0, 2.0, 1.0], &[]), 1);
}

#[test]
fn same_seed_same_sequence_different_seed_different_sequence() {
    let l = random_logits(512, 7);
    let run = |seed: u64| {
        let mut s = Sampler::new(params(|p| {
            p.temperature = 1.0;
            p.seed = seed;
        }));
        (0..64).map(|_| s.sample(&l, &[])).collect::<Vec<_>>()
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
    assert_ne!(run(0), run(u64::MAX));
    // reset() rewinds to the seed.
    let mut s = Sampler::new(params(|p| {
        p.temperature = 1.0;
        p.seed = 1;
    }));
    let first: Vec<u32> = (0..64).map(|_| s.sample(&l, &[])).collect();
    s.reset();
    let again: Vec<u32> = (0..64).map(|_| s.sample(&l, &[])).collect();
    assert_eq!(first, again);
    assert_eq!(first, run(1));
}

#[test]
fn regression_sequence_for_seed_42() {
    // Guards against accidental changes of the generator, exp or draw (all platform-independent
    // by construction, so this list holds on wasm32 too).
    let l = random_logits(64, 3);
    let mut s = Sampler::new(params(|p| {
        p.temperature = 0.8;
        p.top_k = 40;
        p.top_p = 0.95;
        p.min_p = 0.05;
        p.seed = 42;
    }));
    let got: Vec<u32> = (0..16).map(|_| s.sample(&l, &[])).collect();
    assert_eq!(got, EXPECTED_SEED_42, "{got:?}");
}
const EXPECTED_SEED_42: &[u32] = &[25, 8, 18, 32, 55, 35, 18, 31, 35, 24, 18, 62, 54, 62, 18, 49];

#[test]
fn rng_is_xoshiro256starstar_seeded_by_splitmix64() {
    // splitmix64(0) first output is the published 0xE220A8397B1DCDAF.
    let mut sm = pocketllm::sampler::SplitMix64(0);
    assert_eq!(sm.next_u64(), 0xE220_A839_7B1D_CDAF);
    let mut r = Rng::new(0);
    let a: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
    let mut r2 = Rng::new(0);
    assert_eq!(a, (0..4).map(|_| r2.next_u64()).collect::<Vec<_>>());
    let mut r = Rng::new(5);
    for _ in 0..10_000 {
        let u = r.next_f64();
        assert!((0.0..1.0).contains(&u));
    }
}

#[test]
fn top_k_1_is_greedy_at_any_temperature() {
    for t in [0.1f32, 1.0, 5.0, 100.0] {
        let mut s = Sampler::new(params(|p| {
            p.temperature = t;
            p.top_k = 1;
            p.seed = 9;
        }));
        for seed in 0..20 {
            let l = random_logits(300, seed);
            assert_eq!(s.sample(&l, &[]), argmax(&l), "t = {t}");
        }
    }
}

#[test]
fn top_k_keeps_exactly_the_k_best() {
    // Token ids scrambled so order in the vector is not order of likelihood.
    let l = vec![0.0, 3.0, -1.0, 2.9, 0.5, 2.8, 2.7, -3.0];
    let seen = draw(
        params(|p| {
            p.temperature = 3.0;
            p.top_k = 3;
            p.seed = 11
        }),
        &l,
        3000,
    );
    assert_eq!(set(&seen), BTreeSet::from([1, 3, 5]));
    // Without top-k, at high temperature, every token shows up.
    let seen = draw(
        params(|p| {
            p.temperature = 3.0;
            p.seed = 11
        }),
        &l,
        3000,
    );
    assert_eq!(set(&seen), (0..8).collect());
}

#[test]
fn top_p_keeps_the_smallest_prefix_reaching_p() {
    // Probabilities 0.4, 0.3, 0.2, then 0.1 spread over 100 tail tokens.
    let mut w = vec![0.4, 0.3, 0.2];
    w.extend(std::iter::repeat_n(0.001, 100));
    let l = logits_for(&w);
    // Filtering uses the untempered probabilities, so a high temperature only flattens what
    // is left.
    let cases = [(0.35f32, vec![0]), (0.65, vec![0, 1]), (0.85, vec![0, 1, 2])];
    for (top_p, want) in cases {
        let seen = draw(
            params(|p| {
                p.temperature = 10.0;
                p.top_p = top_p;
                p.seed = 3
            }),
            &l,
            4000,
        );
        assert_eq!(set(&seen), want.into_iter().collect(), "top_p {top_p}");
    }
    // 0.95 needs part of the tail.
    let seen = draw(
        params(|p| {
            p.temperature = 10.0;
            p.top_p = 0.95;
            p.seed = 3
        }),
        &l,
        4000,
    );
    assert!(seen.len() > 3 && seen.len() < 103, "{}", seen.len());
}

#[test]
fn min_p_drops_tokens_below_min_p_times_the_best() {
    let l = logits_for(&[0.05, 1.0, 0.5, 0.25, 0.1, 0.19, 0.21]);
    let seen = draw(
        params(|p| {
            p.temperature = 20.0;
            p.min_p = 0.2;
            p.seed = 5
        }),
        &l,
        4000,
    );
    assert_eq!(set(&seen), BTreeSet::from([1, 2, 3, 6]));
    let seen = draw(
        params(|p| {
            p.temperature = 20.0;
            p.min_p = 1.0;
            p.seed = 5
        }),
        &l,
        500,
    );
    assert_eq!(set(&seen), BTreeSet::from([1]));
}

#[test]
fn draws_follow_the_tempered_softmax() {
    let l = logits_for(&[0.5, 0.3, 0.15, 0.05]);
    let n = 40_000;
    let seen = draw(
        params(|p| {
            p.temperature = 1.0;
            p.seed = 2024
        }),
        &l,
        n,
    );
    for (id, want) in [(0u32, 0.5), (1, 0.3), (2, 0.15), (3, 0.05)] {
        let got = seen.get(&id).copied().unwrap_or(0) as f64 / n as f64;
        assert!((got - want).abs() < 0.01, "token {id}: {got} vs {want}");
    }
    // Temperature 0.5 squares the odds: 0.5² : 0.3² : 0.15² : 0.05².
    let seen = draw(
        params(|p| {
            p.temperature = 0.5;
            p.seed = 2024
        }),
        &l,
        n,
    );
    let z = 0.25 + 0.09 + 0.0225 + 0.0025;
    for (id, w) in [(0u32, 0.25), (1, 0.09), (2, 0.0225), (3, 0.0025)] {
        let got = seen.get(&id).copied().unwrap_or(0) as f64 / n as f64;
        assert!((got - w / z).abs() < 0.01, "token {id}: {got} vs {}", w / z);
    }
}

#[test]
fn repetition_penalty_divides_positive_and_multiplies_negative_logits() {
    let p = params(|p| p.repetition_penalty = 2.0);
    let mut l = vec![4.0, -4.0, 1.0, -1.0, 0.0];
    apply_penalties(&p, &mut l, &[0, 1, 0, 4]);
    assert_eq!(l, vec![2.0, -8.0, 1.0, -1.0, 0.0]);
}

#[test]
fn presence_and_frequency_penalties_subtract() {
    let p = params(|p| {
        p.presence_penalty = 0.5;
        p.frequency_penalty = 0.25
    });
    let mut l = vec![1.0; 4];
    apply_penalties(&p, &mut l, &[2, 2, 2, 0]);
    assert_eq!(l, vec![1.0 - 0.5 - 0.25, 1.0, 1.0 - 0.5 - 0.75, 1.0]);
    // Repetition first, then the subtraction (llama.cpp's order).
    let p = params(|p| {
        p.repetition_penalty = 2.0;
        p.presence_penalty = 0.5
    });
    let mut l = vec![3.0, -3.0];
    apply_penalties(&p, &mut l, &[0, 1]);
    assert_eq!(l, vec![1.0, -6.5]);
}

#[test]
fn penalties_only_look_at_the_last_n_tokens_and_ignore_bad_ids() {
    let p = params(|p| {
        p.repetition_penalty = 2.0;
        p.penalty_last_n = 2
    });
    let mut l = vec![4.0; 4];
    apply_penalties(&p, &mut l, &[0, 1, 2, 3, 3, 99]);
    assert_eq!(l, vec![4.0, 4.0, 4.0, 2.0]);
    // penalty_last_n = 0 turns them off.
    let p = params(|p| {
        p.repetition_penalty = 2.0;
        p.penalty_last_n = 0
    });
    let mut l = vec![4.0; 4];
    apply_penalties(&p, &mut l, &[0, 1, 2, 3]);
    assert_eq!(l, vec![4.0; 4]);
}

#[test]
fn sampler_applies_penalties_before_choosing() {
    // Greedy would pick 0; the penalty pushes it below token 1.
    let l = [2.0, 1.9, -1.0];
    let mut s = Sampler::new(params(|p| p.repetition_penalty = 1.2));
    assert_eq!(s.sample(&l, &[]), 0);
    assert_eq!(s.sample(&l, &[0]), 1);
    // Negative logits get more negative (dividing would have made 0 win).
    let l = [-1.0, -1.1];
    assert_eq!(s.sample(&l, &[0]), 1);
    // Frequency counts occurrences.
    let l = [1.0, 0.5];
    let mut s = Sampler::new(params(|p| p.frequency_penalty = 0.2));
    assert_eq!(s.sample(&l, &[0, 0]), 0);
    assert_eq!(s.sample(&l, &[0, 0, 0]), 1);
    // And the filters see penalized logits: with top_k = 1 at temperature 1 the penalized best
    // is the only candidate.
    let mut s = Sampler::new(params(|p| {
        p.temperature = 1.0;
        p.top_k = 1;
        p.presence_penalty = 5.0
    }));
    assert_eq!(s.sample(&[3.0, 2.0, 0.0], &[0]), 1);
}

#[test]
fn odd_logits_do_not_panic() {
    let mut s = Sampler::new(params(|p| {
        p.temperature = 1.0;
        p.top_p = 0.9;
        p.min_p = 0.1;
        p.top_k = 5
    }));
    assert_eq!(s.sample(&[], &[]), 0);
    assert_eq!(s.sample(&[f32::NAN, f32::NAN], &[]), 0);
    assert_eq!(s.sample(&[f32::NEG_INFINITY, f32::NEG_INFINITY, f32::NEG_INFINITY], &[]), 0);
    assert_eq!(s.sample(&[f32::NAN, f32::INFINITY, 1.0], &[]), 1);
    for _ in 0..100 {
        let t = s.sample(&[f32::NEG_INFINITY, 0.0, f32::NAN, 0.0], &[7, 8]);
        assert!(t == 1 || t == 3);
    }
}

#[test]
fn invalid_params_are_errors() {
    let bad: Vec<(&str, SamplerParams)> = vec![
        ("temperature", SamplerParams { temperature: -0.1, ..Default::default() }),
        ("temperature", SamplerParams { temperature: f32::NAN, ..Default::default() }),
        ("top_p", SamplerParams { top_p: 0.0, ..Default::default() }),
        ("top_p", SamplerParams { top_p: 1.01, ..Default::default() }),
        ("top_p", SamplerParams { top_p: f32::NAN, ..Default::default() }),
        ("min_p", SamplerParams { min_p: -0.01, ..Default::default() }),
        ("min_p", SamplerParams { min_p: 1.5, ..Default::default() }),
        ("repetition_penalty", SamplerParams { repetition_penalty: 0.0, ..Default::default() }),
        ("repetition_penalty", SamplerParams { repetition_penalty: -1.0, ..Default::default() }),
        ("frequency_penalty", SamplerParams { frequency_penalty: f32::INFINITY, ..Default::default() }),
    ];
    for (field, p) in bad {
        let e = p.validate().unwrap_err();
        assert_eq!(e.code(), "invalid_argument");
        assert!(e.to_string().contains(field), "{e}");
    }
    for ok in [
        SamplerParams::default(),
        SamplerParams {
            temperature: 0.7,
            top_k: 40,
            top_p: 1.0,
            min_p: 1.0,
            repetition_penalty: 0.5,
            ..Default::default()
        },
        SamplerParams { presence_penalty: -1.0, frequency_penalty: 2.0, ..Default::default() },
    ] {
        ok.validate().unwrap();
    }
}

/// Logits with what real rows have and what breaks naive code: a few repeated values (ties),
/// NaN, both infinities, -0.0 next to 0.0, and tokens the penalties hit.
fn awkward_logits(n: usize, seed: u64) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..n)
        .map(|_| match r.next_u64() % 40 {
            0 => f32::NAN,
            1 => f32::NEG_INFINITY,
            2 => 0.0,
            3 => -0.0,
            4 => 2.5, // many exact ties near the top
            5 if r.next_u64().is_multiple_of(50) => f32::INFINITY,
            _ => (r.next_f64() * 10.0 - 5.0) as f32,
        })
        .collect()
}

/// The candidate path (what the GPU hands back: the top few ids and logits) picks exactly the
/// token the whole row picks, draw after draw, for every setting where `candidates_needed`
/// says it is enough; and says `None` where it is not.
#[test]
fn sampling_from_the_top_candidates_equals_sampling_from_the_whole_row() {
    let mut r = Rng::new(77);
    let mut checked = 0;
    for case in 0..300u64 {
        let n_vocab = [5usize, 64, 1000, 4099][case as usize % 4];
        let logits = awkward_logits(n_vocab, case);
        let history: Vec<u32> =
            (0..(r.next_u64() % 100)).map(|_| (r.next_u64() % (n_vocab as u64 + 3)) as u32).collect();
        let pick = |r: &mut Rng, choices: &[f32]| choices[(r.next_u64() % choices.len() as u64) as usize];
        let p = params(|p| {
            p.temperature = pick(&mut r, &[0.0, 0.3, 0.8, 1.5]);
            p.top_k = [1usize, 2, 5, 40, 300][(r.next_u64() % 5) as usize];
            p.top_p = pick(&mut r, &[1.0, 0.95, 0.5, 0.05]);
            p.min_p = pick(&mut r, &[0.0, 0.05, 0.5]);
            p.repetition_penalty = pick(&mut r, &[1.0, 1.1, 2.0]);
            p.presence_penalty = pick(&mut r, &[0.0, 0.5]);
            p.frequency_penalty = pick(&mut r, &[0.0, 0.3]);
            p.penalty_last_n = [0usize, 8, 64][(r.next_u64() % 3) as usize];
            p.seed = case;
        });
        let (mut whole, mut from_top) = (Sampler::new(p.clone()), Sampler::new(p.clone()));
        let needed = from_top.candidates_needed(&history).expect("top-k with lowering penalties is bounded");
        let top = top_candidates(&logits, needed);
        assert_eq!(top.len(), needed.min(n_vocab));
        for draw in 0..20 {
            let (a, b) = (whole.sample(&logits, &history), from_top.sample_candidates(&top, &history));
            assert_eq!(a, b, "case {case} draw {draw}: {p:?}");
            checked += 1;
        }
    }
    assert_eq!(checked, 300 * 20);
    // Settings with no bound: the whole row is needed.
    for f in [
        (|p: &mut SamplerParams| p.top_k = 0) as fn(&mut SamplerParams),
        |p| p.repetition_penalty = 0.9,
        |p| p.presence_penalty = -0.5,
        |p| p.frequency_penalty = -0.1,
        |p| p.top_k = 2000,
    ] {
        let p = params(|p| {
            p.temperature = 0.7;
            p.top_k = 40;
            p.repetition_penalty = 1.1;
            f(p);
        });
        assert_eq!(Sampler::new(p.clone()).candidates_needed(&[1, 2, 3]), None, "{p:?}");
    }
}

#[test]
fn top_candidates_rank_like_the_sampler() {
    let logits = [1.0, f32::NAN, 3.0, 3.0, f32::INFINITY, -0.0, 0.0, f32::NEG_INFINITY];
    let top = top_candidates(&logits, 8);
    let ids: Vec<u32> = top.iter().map(|c| c.0).collect();
    // +inf first, the tie 3.0 by id, then 1.0, then 0.0 == -0.0 by id, then -inf == NaN by id.
    assert_eq!(ids, [4, 2, 3, 0, 5, 6, 1, 7]);
    assert!(top[6].1.is_nan(), "the raw logits come back");
    assert_eq!(top_candidates(&logits, 3).len(), 3);
    assert!(top_candidates(&[], 3).is_empty());
}
