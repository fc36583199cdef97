// temporary development sweep against scipy output in /tmp/ksdev
use vsim::stats::kolmogorov::{kstwo_sf, smirnov_sf};
use vsim::stats::{ks_2samp, KsMode};

fn rel(a: f64, b: f64) -> f64 {
    if a == b { return 0.0; }
    (a - b).abs() / b.abs().max(1e-300)
}

#[test]
fn sweep_kstwo() {
    let text = std::fs::read_to_string("/tmp/ksdev/kstwo.txt").unwrap();
    let mut worst = (0.0, String::new());
    let mut worst_s = (0.0, String::new());
    let mut bad = 0;
    for line in text.lines() {
        let p: Vec<&str> = line.split(' ').collect();
        let n: u64 = p[0].parse().unwrap();
        let x: f64 = p[1].parse().unwrap();
        let k: f64 = p[2].parse().unwrap();
        let s: f64 = p[3].parse().unwrap();
        let mk = kstwo_sf(n, x);
        let ms = smirnov_sf(n, x);
        let e = if k < 1e-300 { (mk - k).abs() } else { rel(mk, k) };
        let es = if s < 1e-300 { (ms - s).abs() } else { rel(ms, s) };
        if e > 1e-8 || !(e >= 0.0) { bad += 1; if bad < 40 { println!("kstwo n={n} x={x} scipy={k} mine={mk} rel={e}"); } }
        if es > 1e-8 || !(es >= 0.0) { bad += 1; if bad < 40 { println!("smirnov n={n} x={x} scipy={s} mine={ms} rel={es}"); } }
        if e > worst.0 { worst = (e, line.to_string()); }
        if es > worst_s.0 { worst_s = (es, line.to_string()); }
    }
    println!("worst kstwo {:?}\nworst smirnov {:?}\nbad {bad}", worst, worst_s);
    assert_eq!(bad, 0);
}

#[test]
fn sweep_ks2() {
    let text = std::fs::read_to_string("/tmp/ksdev/ks2.txt").unwrap();
    let mut bad = 0;
    let mut worst = 0.0f64;
    for line in text.lines() {
        let p: Vec<&str> = line.split(';').collect();
        let mode = match p[0] { "exact" => KsMode::Exact, "asymp" => KsMode::Asymptotic, _ => KsMode::Auto };
        let a: Vec<f64> = p[1].split(' ').map(|s| s.parse().unwrap()).collect();
        let b: Vec<f64> = p[2].split(' ').map(|s| s.parse().unwrap()).collect();
        let d: f64 = p[3].parse().unwrap();
        let pv: f64 = p[4].parse().unwrap();
        let r = ks_2samp(&a, &b, mode).unwrap();
        let e = if pv < 1e-300 { (r.pvalue - pv).abs() } else { rel(r.pvalue, pv) };
        worst = worst.max(e);
        if (r.statistic - d).abs() > 1e-12 || e > 1e-8 || (pv.is_nan() != r.pvalue.is_nan()) {
            bad += 1;
            if bad < 20 { println!("{} n1={} n2={} d={} mine={} p={} mine={} ({:?})", p[0], a.len(), b.len(), d, r.statistic, pv, r.pvalue, r.method_used); }
        }
    }
    println!("worst rel {worst}, bad {bad}");
    assert_eq!(bad, 0);
}
