//! Time training steps of one lab model: `speed LAYERS HIDDEN BATCH SEQ STEPS`.
use lab::data::Batches;
use lab::optim::{Optim, Schedule};
use lab::train::train;
use lab::{Model, ModelConfig};

fn main() {
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse().unwrap())
        .collect();
    let (layers, hidden, batch, seq, steps) = (a[0], a[1], a[2], a[3], a[4]);
    let c = ModelConfig {
        layers,
        hidden,
        heads: hidden / 16,
        kv_heads: hidden / 32,
        intermediate: hidden * 8 / 3,
        seq_len: seq,
        rope_theta: 10000.0,
        rms_eps: 1e-5,
        init_std: 0.02,
        experts: None,
    };
    let text: Vec<u8> = std::fs::read(std::env::var("CORPUS").unwrap()).unwrap();
    let m = Model::init(c.clone(), 1, &candle_core::Device::Cpu).unwrap();
    let o = Optim {
        steps,
        batch,
        seq_len: seq,
        lr: 3e-3,
        min_lr: 3e-4,
        warmup: steps / 10,
        schedule: Schedule::Cosine,
        weight_decay: 0.1,
        beta1: 0.9,
        beta2: 0.95,
        clip: 1.0,
    };
    let mut b = Batches::new(&text, (0, text.len()), batch, seq, 7);
    let t = std::time::Instant::now();
    let losses = train(
        "speed",
        &m,
        &mut b,
        &o,
        &[],
        &mut |s| {
            if s.step % 10 == 0 {
                eprintln!("{} {:.3} {:.0} tok/s", s.step, s.loss, s.tokens_per_s)
            }
        },
        &mut |_, _, _| Ok(()),
    )
    .unwrap();
    println!(
        "params {} steps {steps}: {:.1} s, first {:.3} last {:.3}",
        c.parameters(),
        t.elapsed().as_secs_f64(),
        losses[0],
        losses[losses.len() - 1]
    );
}
