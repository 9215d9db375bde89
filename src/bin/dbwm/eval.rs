//! `dbwm eval`: robustness and distortion over random keys, on the
//! generated table or the caller's; results as a table, CSV, JSON and SVG.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use dbwatermark::report::OutcomeReport;
use dbwatermark::{eval, files};

use crate::output::{Failure, Outcome, Progress};
use crate::tables::read_table;

#[derive(clap::Args)]
pub struct EvalArgs {
    /// Random keys and contents per scenario.
    #[arg(long, default_value_t = 100)]
    pub keys: usize,
    /// Extractions on unmarked data and with wrong keys (half each).
    #[arg(long, default_value_t = 10_000)]
    pub fp_trials: usize,
    /// Seed of everything random.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// Your own table (any format `dbwm` reads) instead of the generated one.
    #[arg(long, requires = "pk")]
    pub input: Option<PathBuf>,
    /// Primary-key column(s) of --input.
    #[arg(long, value_delimiter = ',')]
    pub pk: Vec<String>,
    /// Folder for the results.
    #[arg(long, default_value = "dbwm-eval")]
    pub out: PathBuf,
    /// Mark every column by its type (only the zero and sign rule), as
    /// before column plans, instead of profiling and planning each column
    /// as `dbwm embed` does.
    #[arg(long)]
    pub typed: bool,
    /// Columns of --input that form a virtual key, for the key-dropped
    /// scenarios (the generated table's are name,age).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "COL,COL...",
        requires = "input"
    )]
    pub virtual_key: Vec<String>,
    /// Leave out the lossless modes' scenarios (pseudo-rows, detection,
    /// key dropped).
    #[arg(long, conflicts_with = "lossless_only")]
    pub skip_lossless: bool,
    /// Run only the lossless modes' scenarios (and the fidelity check).
    #[arg(long)]
    pub lossless_only: bool,
}

/// Runs every scenario, prints the table of outcomes and writes the files;
/// exit 0 only if every targeted scenario met its target. Every failure to
/// run exits 2, as a bad `--input` does.
pub fn run(args: &EvalArgs) -> Outcome {
    let config = eval::EvalConfig {
        keys: args.keys,
        false_positive_trials: args.fp_trials,
        seed: args.seed,
        marking: if args.typed {
            eval::Marking::Typed
        } else {
            eval::Marking::Planned
        },
        ..Default::default()
    };
    let config = &config;
    let input = args.input.as_deref();
    let out = args.out.as_path();
    let table = match input {
        Some(path) => read_table(path, &args.pk).map_err(Failure::Caller)?,
        None => eval::default_table(),
    };
    std::fs::create_dir_all(out)
        .map_err(|e| Failure::Caller(format!("cannot create {}: {e}", out.display())))?;
    let start = Instant::now();
    let mut outcomes = Vec::new();
    if !args.lossless_only {
        let progress = Progress::new("evaluating");
        outcomes.extend(eval::run(&table, config, &mut |done, total| {
            progress.update(done, Some(total))
        }));
        drop(progress);
        let progress = Progress::new("who leaked");
        outcomes.extend(eval::trace(&table, config, &mut |done, total| {
            progress.update(done, Some(total))
        }));
        drop(progress);
        if input.is_none() {
            outcomes.extend(eval::dsc_minimum(config));
        }
    }
    let mut detections = Vec::new();
    if !args.skip_lossless {
        lossless(args, &table, config, &mut outcomes, &mut detections);
    }
    // The fidelity of a copy marked in cells (the lossless modes change no
    // real cell).
    let fidelity = (!args.lossless_only).then(|| eval::fidelity_of(&table, config));
    if let Some(fidelity) = &fidelity {
        let changed = outcomes.first().map_or(0.0, |o| o.cells_changed);
        outcomes.push(eval::fidelity_outcome(fidelity, changed));
    }
    say!(
        "dbwm: {} rows, {} keys per scenario, {:.1} s",
        table.rows(),
        config.keys,
        start.elapsed().as_secs_f64()
    );
    outln!(
        "{:<68} {:>8} {:>10} {:>6} {:>9} {:>11} {:>8} {:>8}  target",
        "scenario",
        "strength",
        "recovered",
        "wrong",
        "changed",
        "mean change",
        "log10 p",
        "seconds"
    );
    for o in &outcomes {
        outln!(
            "{:<68} {:>8} {:>9.1}% {:>6} {:>8.1}% {:>11.2} {:>8} {:>8.2}  {}",
            o.scenario,
            o.strength,
            100.0 * o.recovery(),
            o.wrong,
            100.0 * o.cells_changed,
            o.mean_abs_change,
            o.median_log10_p
                .map_or_else(|| "-".to_owned(), |p| format!("{p:.1}")),
            o.seconds,
            match o.target_met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "-",
            }
        );
    }
    if let Some(fidelity) = &fidelity {
        print_fidelity(fidelity)?;
        write_fidelity(fidelity, out).map_err(Failure::Caller)?;
    }
    print_detections(&detections)?;
    write_detections(&detections, out).map_err(Failure::Caller)?;
    write_eval_files(&outcomes, out).map_err(Failure::Caller)?;
    let targeted: Vec<_> = outcomes.iter().filter_map(|o| o.target_met).collect();
    let met = targeted.iter().filter(|&&m| m).count();
    outln!("results: {}", out.display());
    outln!("eval: {met}/{} scenarios met target", targeted.len());
    Ok(if met == targeted.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The lossless modes' scenarios: pseudo-rows (on the generated table
/// with deleted ids, or the caller's) and key-dropped leaks (from the
/// generated table's name,age, or the caller's --virtual-key).
fn lossless(
    args: &EvalArgs,
    table: &dbwatermark::Table,
    config: &eval::EvalConfig,
    outcomes: &mut Vec<eval::Outcome>,
    detections: &mut Vec<Vec<eval::pseudo::Detection>>,
) {
    let generated;
    let rows_table = if args.input.is_some() {
        table
    } else {
        generated = eval::pseudo::table_with_gaps(100_000, config.seed);
        &generated
    };
    match eval::pseudo::can_carry(rows_table) {
        Ok(()) => {
            say!("dbwm: pseudo-rows on {} rows", rows_table.rows());
            let progress = Progress::new("pseudo-rows");
            outcomes.extend(eval::pseudo::run(
                rows_table,
                config,
                detections,
                &mut |d, t| progress.update(d, Some(t)),
            ));
        }
        Err(why) => say!("dbwm: no pseudo-row scenarios: {why}"),
    }
    let vk: Vec<&str> = if args.input.is_some() {
        args.virtual_key.iter().map(String::as_str).collect()
    } else {
        vec!["name", "age"]
    };
    if !vk.is_empty() {
        let progress = Progress::new("key dropped");
        outcomes.extend(eval::pseudo::key_dropped(
            table,
            &vk,
            config,
            &mut |d, t| progress.update(d, Some(t)),
        ));
    }
}

/// Each detector's mean and largest AUC over the keys.
fn detection_summary(detections: &[Vec<eval::pseudo::Detection>]) -> Vec<(&'static str, f64, f64)> {
    let mut out: Vec<(&'static str, f64, f64)> = Vec::new();
    for d in detections.iter().flatten() {
        match out.iter_mut().find(|(name, ..)| *name == d.detector) {
            Some((_, sum, max)) => {
                *sum += d.auc;
                *max = max.max(d.auc);
            }
            None => out.push((d.detector, d.auc, d.auc)),
        }
    }
    for (_, sum, _) in &mut out {
        *sum /= detections.len().max(1) as f64;
    }
    out
}

fn print_detections(detections: &[Vec<eval::pseudo::Detection>]) -> Result<(), Failure> {
    if detections.is_empty() {
        return Ok(());
    }
    outln!(
        "{:<24} {:>9} {:>9}",
        "pseudo-row detector",
        "mean AUC",
        "max AUC"
    );
    for (name, mean, max) in detection_summary(detections) {
        outln!("{name:<24} {mean:>9.3} {max:>9.3}");
    }
    outln!("(0.5: no better than chance; 1: finds every fabricated row)\n");
    Ok(())
}

fn write_detections(detections: &[Vec<eval::pseudo::Detection>], out: &Path) -> Result<(), String> {
    if detections.is_empty() {
        return Ok(());
    }
    let mut csv = String::from("detector,mean_auc,max_auc\n");
    for (name, mean, max) in detection_summary(detections) {
        csv.push_str(&format!("{name},{mean:.4},{max:.4}\n"));
    }
    let path = out.join("detection.csv");
    std::fs::write(&path, csv).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn print_fidelity(f: &eval::fidelity::Fidelity) -> Result<(), Failure> {
    outln!();
    outln!(
        "{:<20} {:<11} {:>8} {:>17} {:>10} {:>8} {:>6} {:>6} {:>10} {:>9}",
        "column",
        "kind",
        "changed",
        "distinct",
        "new labels",
        "range",
        "signs",
        "zeros",
        "mean Δ/sd",
        "sd Δ/sd"
    );
    for c in &f.columns {
        outln!(
            "{:<20} {:<11} {:>8} {:>17} {:>10} {:>8} {:>6} {:>6} {:>9.4}% {:>8.4}%",
            c.name,
            c.kind.as_str(),
            c.cells_changed,
            format!("{} → {}", c.distinct_before, c.distinct_after),
            c.new_label_cells,
            c.out_of_range,
            c.sign_flips,
            c.zeros_moved,
            100.0 * c.mean_shift,
            100.0 * c.std_change
        );
    }
    if !f.groups.is_empty() {
        outln!(
            "\n{:<20} {:>7} {:>15} {:>26} {:>12}",
            "group by",
            "groups",
            "counts changed",
            "worst group mean Δ/sd",
            "filter lost"
        );
    }
    for g in &f.groups {
        outln!(
            "{:<20} {:>7} {:>15} {:>26} {:>12}",
            g.column,
            g.groups,
            g.counts_changed,
            format!(
                "{:.4}% ({})",
                100.0 * g.worst_mean_shift,
                g.worst_measure.as_deref().unwrap_or("-")
            ),
            g.filter_rows_lost
        );
    }
    outln!("fidelity: {} semantic violations\n", f.violations());
    Ok(())
}

fn write_fidelity(f: &eval::fidelity::Fidelity, out: &Path) -> Result<(), String> {
    let mut csv = String::from(
        "column,kind,cells_changed,distinct_before,distinct_after,new_label_cells,out_of_range,sign_flips,zeros_moved,mean_shift_of_sd,sd_change_of_sd,violations\n",
    );
    for c in &f.columns {
        csv.push_str(&format!(
            "\"{}\",{},{},{},{},{},{},{},{},{:.6},{:.6},{}\n",
            c.name,
            c.kind.as_str(),
            c.cells_changed,
            c.distinct_before,
            c.distinct_after,
            c.new_label_cells,
            c.out_of_range,
            c.sign_flips,
            c.zeros_moved,
            c.mean_shift,
            c.std_change,
            c.violations()
        ));
    }
    let mut groups = String::from(
        "column,groups,counts_changed,worst_mean_shift_of_sd,worst_measure,filter_rows_lost\n",
    );
    for g in &f.groups {
        groups.push_str(&format!(
            "\"{}\",{},{},{:.6},{},{}\n",
            g.column,
            g.groups,
            g.counts_changed,
            g.worst_mean_shift,
            g.worst_measure.as_deref().unwrap_or(""),
            g.filter_rows_lost
        ));
    }
    let write = |name: &str, bytes: &[u8]| {
        files::write_atomically(&out.join(name), bytes).map_err(|e| e.to_string())
    };
    write("fidelity.csv", csv.as_bytes())?;
    write("groupby.csv", groups.as_bytes())
}

fn write_eval_files(outcomes: &[eval::Outcome], out: &Path) -> Result<(), String> {
    let mut csv = String::from(
        "scenario,strength,trials,recovered,recovery,wrong,cells_changed,mean_abs_change,median_log10_p,seconds,target\n",
    );
    for o in outcomes {
        let target = match o.target_met {
            Some(true) => "met",
            Some(false) => "missed",
            None => "",
        };
        csv.push_str(&format!(
            "\"{}\",{},{},{},{:.4},{},{:.4},{:.3},{},{:.3},{target}\n",
            o.scenario,
            o.strength,
            o.trials,
            o.recovered,
            o.recovery(),
            o.wrong,
            o.cells_changed,
            o.mean_abs_change,
            o.median_log10_p
                .map_or_else(String::new, |p| format!("{p:.2}")),
            o.seconds
        ));
    }
    let json: Vec<OutcomeReport> = outcomes.iter().map(OutcomeReport::from).collect();
    let write = |name: &str, bytes: &[u8]| {
        files::write_atomically(&out.join(name), bytes).map_err(|e| e.to_string())
    };
    write("results.csv", csv.as_bytes())?;
    write(
        "results.json",
        serde_json::to_string_pretty(&json)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    write("recovery.svg", recovery_chart(outcomes)?.as_bytes())
}

/// Recovery against attack strength, one panel per attack with several
/// strengths, as SVG.
fn recovery_chart(outcomes: &[eval::Outcome]) -> Result<String, String> {
    use plotters::prelude::*;
    let mut names: Vec<&str> = Vec::new();
    for o in outcomes {
        let n = outcomes.iter().filter(|p| p.scenario == o.scenario).count();
        if n > 1 && !names.contains(&o.scenario.as_str()) {
            names.push(&o.scenario);
        }
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1200, 800)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let panels = root.split_evenly((2, names.len().div_ceil(2).max(1)));
        for (name, panel) in names.iter().zip(panels.iter()) {
            let points: Vec<(f64, f64)> = outcomes
                .iter()
                .filter(|o| o.scenario == *name)
                .map(|o| (o.strength, 100.0 * o.recovery()))
                .collect();
            let lo = points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
            let hi = points.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
            let pad = ((hi - lo) * 0.1).max(0.05);
            let mut chart = ChartBuilder::on(panel)
                .caption(*name, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(30)
                .y_label_area_size(40)
                .build_cartesian_2d((lo - pad)..(hi + pad), 0.0..105.0)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_desc("strength")
                .y_desc("recovered %")
                .draw()
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(LineSeries::new(points.clone(), BLUE.stroke_width(2)))
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 4, BLUE.filled())))
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}
