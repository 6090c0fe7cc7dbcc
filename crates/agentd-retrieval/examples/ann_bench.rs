//! The approximate nearest-neighbour benchmark: agentd's `HnswIndex` next to
//! FAISS's `IndexHNSWFlat`, on the same vectors, in the same run.
//!
//! ```sh
//! cargo run --release -p agentd-retrieval --example ann_bench -- \
//!     [--python PATH] [--data DIR] [--queries 10000] [--m 16] [--ef-construction 128] [--repeats 3] \
//!     [--rounds 2] [--limit N] [--skip-faiss]
//! ```
//!
//! Data: GloVe 6B, 50 dimensions (400,000 word vectors), fetched by
//! `bench/glove-data` unless `--data` names the folder holding
//! `glove_6B_50d_emb.npy`. A seeded random choice of `--queries` vectors is
//! held out as queries and the rest is indexed; every vector is normalised,
//! so cosine similarity is the inner product for both engines. The exact
//! ten nearest neighbours of each query are computed once with
//! [`ExactIndex`] and cached beside the data, with the prepared base and
//! query vectors, which FAISS's side (`bench/reference/ann_faiss.py`, run
//! with `--python`, by default the venv `bench/setup-venv` makes) reads, so
//! both engines see the same numbers.
//!
//! Measured for both: the build with one thread and with two, the memory
//! the index takes, and, for each recall@10 target, the queries a second at
//! the lowest ef (efSearch) reaching it, with one thread and with the queries
//! split between two. The ef values swept are the same for both engines.
//! The whole measurement runs `--rounds` times per engine, alternating which
//! goes first, and each figure is the best of the rounds: on a shared
//! machine, the one least disturbed by other processes.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use agentd_retrieval::vector::{ExactIndex, HnswIndex, HnswParams, VectorIndex, VectorKey};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::index::sample;
use serde_json::Value;

const K: usize = 10;
const SEED: u64 = 42;
const GLOVE_FILE: &str = "glove_6B_50d_emb.npy";

type Error = Box<dyn std::error::Error>;

struct Options {
    python: Option<PathBuf>,
    data: Option<PathBuf>,
    queries: usize,
    m: usize,
    ef_construction: usize,
    repeats: usize,
    targets: Vec<f64>,
    skip_faiss: bool,
    /// Index only the first this many base vectors (quicker runs while tuning).
    limit: Option<usize>,
    /// Whole measurement rounds per engine, in the order agentd, FAISS,
    /// FAISS, agentd, ...; each figure is the best of its rounds.
    rounds: usize,
}

fn options() -> Result<Options, Error> {
    let mut options = Options {
        python: None,
        data: None,
        queries: 10_000,
        m: 16,
        ef_construction: 128,
        repeats: 3,
        targets: vec![0.90, 0.95, 0.99],
        skip_faiss: false,
        limit: None,
        rounds: 2,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--python" => options.python = Some(value()?.into()),
            "--data" => options.data = Some(value()?.into()),
            "--queries" => options.queries = value()?.parse()?,
            "--m" => options.m = value()?.parse()?,
            "--ef-construction" => options.ef_construction = value()?.parse()?,
            "--repeats" => options.repeats = value()?.parse::<usize>()?.max(1),
            "--targets" => {
                options.targets = value()?.split(',').map(str::parse).collect::<Result<_, _>>()?;
                options.targets.sort_by(f64::total_cmp);
            }
            "--skip-faiss" => options.skip_faiss = true,
            "--limit" => options.limit = Some(value()?.parse()?),
            "--rounds" => options.rounds = value()?.parse::<usize>()?.max(1),
            "-h" | "--help" => {
                println!(
                    "ann_bench [--python PATH] [--data DIR] [--queries N] [--m M] [--ef-construction N] \
                     [--repeats N] [--targets 0.9,0.95,0.99] [--skip-faiss] [--limit N] [--rounds 2]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other} (try --help)").into()),
        }
    }
    Ok(options)
}

fn main() -> Result<(), Error> {
    let options = options()?;
    let load_before = load_average();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let data = match &options.data {
        Some(dir) => dir.clone(),
        None => script_output(&repo.join("bench/glove-data"), &[])?.into(),
    };
    let prepared = prepare(&data, options.queries, options.limit)?;
    let params = HnswParams { connectivity: options.m, expansion_add: options.ef_construction, expansion_search: 64 };
    let sweep_efs = ef_grid();

    let python = match (&options.python, options.skip_faiss) {
        (_, true) => None,
        (Some(python), false) => Some(python.clone()),
        (None, false) => Some(script_output(&repo.join("bench/setup-venv"), &["faiss-cpu", "numpy"])?.into()),
    };
    // Rounds alternate which engine goes first (ABBA...), so a machine
    // that gets busier or quieter during the run favours neither.
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..options.rounds {
        let faiss_first = round % 2 == 1;
        for faiss_turn in [faiss_first, !faiss_first] {
            match (&python, faiss_turn) {
                (Some(python), true) => {
                    eprintln!("round {}: FAISS building and sweeping ({})", round + 1, python.display());
                    theirs.push(run_faiss(python, &repo, &prepared, &options, &sweep_efs)?);
                }
                (_, false) => {
                    eprintln!(
                        "round {}: agentd building ({} vectors, M={}, efConstruction={})",
                        round + 1,
                        prepared.base_count,
                        options.m,
                        options.ef_construction
                    );
                    ours.push(measure_agentd(&prepared, params, &sweep_efs, &options)?);
                }
                (None, true) => {}
            }
        }
    }
    print_table(&ours, &theirs, &options);
    println!(
        "\n1-minute load average before the run {load_before}, after it {}: other processes share the CPU \
         above 0, which lowers and scatters every figure, two-thread ones most",
        load_average()
    );
    Ok(())
}

/// The 1-minute load average, to tell a quiet machine from a busy one.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// Runs one of the bench scripts and returns the last line it printed.
fn script_output(script: &Path, args: &[&str]) -> Result<String, Error> {
    let output = Command::new(script).args(args).stderr(Stdio::inherit()).output()?;
    if !output.status.success() {
        return Err(format!("{} failed ({})", script.display(), output.status).into());
    }
    let stdout = String::from_utf8(output.stdout)?;
    Ok(stdout.lines().last().unwrap_or_default().trim().to_owned())
}

/// The ef values both engines sweep: from 10 upwards in steps of about 10 %.
fn ef_grid() -> Vec<usize> {
    let mut efs = vec![10];
    while *efs.last().unwrap() < 4000 {
        let last = *efs.last().unwrap();
        efs.push((last + 1).max((last as f64 * 1.1).round() as usize));
    }
    efs
}

// ---------------------------------------------------------------------------
// Data

/// Unit vectors, row after row, and the exact neighbours of the queries.
struct Prepared {
    dimension: usize,
    base_count: usize,
    base: Vec<f32>,
    queries: Vec<f32>,
    /// `K` base row numbers per query, best first.
    truth: Vec<u32>,
    base_file: PathBuf,
    queries_file: PathBuf,
    truth_file: PathBuf,
}

fn prepare(data: &Path, query_count: usize, limit: Option<usize>) -> Result<Prepared, Error> {
    let (rows, dimension, mut values) = read_npy(&data.join(GLOVE_FILE))?;
    for (row, vector) in values.chunks_exact_mut(dimension).enumerate() {
        let norm = vector.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt();
        if norm == 0.0 || !norm.is_finite() {
            return Err(format!("row {row} of {GLOVE_FILE} has no direction").into());
        }
        vector.iter_mut().for_each(|v| *v = (f64::from(*v) / norm) as f32);
    }
    if query_count == 0 || query_count >= rows {
        return Err(format!("--queries must be between 1 and {}", rows - 1).into());
    }
    let mut is_query = vec![false; rows];
    for row in sample(&mut StdRng::seed_from_u64(SEED), rows, query_count) {
        is_query[row] = true;
    }
    let (mut base, mut queries) = (Vec::new(), Vec::new());
    for (vector, &query) in values.chunks_exact(dimension).zip(&is_query) {
        if query { &mut queries } else { &mut base }.extend_from_slice(vector);
    }
    let mut base_count = rows - query_count;
    let mut stem = format!("glove50-q{query_count}-seed{SEED}");
    if let Some(limit) = limit.filter(|&limit| limit < base_count) {
        base_count = limit;
        base.truncate(limit * dimension);
        stem = format!("{stem}-first{limit}");
    }

    let base_file = data.join(format!("{stem}.base.f32"));
    let queries_file = data.join(format!("{stem}.queries.f32"));
    let truth_file = data.join(format!("{stem}.truth{K}.u32"));
    write_if_different(&base_file, &f32_bytes(&base))?;
    write_if_different(&queries_file, &f32_bytes(&queries))?;
    let truth = match fs::read(&truth_file) {
        Ok(bytes) if bytes.len() == query_count * K * 4 => {
            bytes.chunks_exact(4).map(|b| u32::from_le_bytes(b.try_into().unwrap())).collect()
        }
        _ => {
            let truth = exact_neighbours(&base, &queries, dimension)?;
            let bytes: Vec<u8> = truth.iter().flat_map(|id| id.to_le_bytes()).collect();
            fs::write(&truth_file, bytes)?;
            truth
        }
    };
    Ok(Prepared { dimension, base_count, base, queries, truth, base_file, queries_file, truth_file })
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn write_if_different(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    if fs::read(path).ok().as_deref() != Some(bytes) {
        fs::write(path, bytes)?;
    }
    Ok(())
}

/// Reads a 2-D little-endian float32 `.npy` file: (rows, columns, values
/// row after row), transposing a Fortran-order (column after column) file.
fn read_npy(path: &Path) -> Result<(usize, usize, Vec<f32>), Error> {
    let bytes = fs::read(path).map_err(|e| format!("{}: {e} (run bench/glove-data)", path.display()))?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(format!("{} is not a .npy file", path.display()).into());
    }
    let (header_len, header_start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes(bytes[8..12].try_into()?) as usize, 12),
        version => return Err(format!(".npy format version {version} is not supported").into()),
    };
    let header = std::str::from_utf8(bytes.get(header_start..header_start + header_len).ok_or("truncated header")?)?;
    let field = |name: &str| -> Result<&str, Error> {
        let at = header.find(&format!("'{name}':")).ok_or_else(|| format!("no {name} in .npy header: {header}"))?;
        Ok(header[at + name.len() + 3..].trim_start())
    };
    if !field("descr")?.starts_with("'<f4'") {
        return Err(format!("only little-endian float32 .npy files are supported: {header}").into());
    }
    let fortran_order = field("fortran_order")?.starts_with("True");
    let shape = field("shape")?;
    let shape = &shape[1..shape.find(')').ok_or("bad shape")?];
    let dims: Vec<usize> =
        shape.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::parse).collect::<Result<_, _>>()?;
    let [rows, columns] = dims[..] else {
        return Err(format!("expected a 2-D array, found shape ({shape})").into());
    };
    let data = &bytes[header_start + header_len..];
    if data.len() != rows * columns * 4 {
        return Err(format!("{}: {} data bytes for shape ({rows}, {columns})", path.display(), data.len()).into());
    }
    let stored: Vec<f32> = data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    if !fortran_order {
        return Ok((rows, columns, stored));
    }
    let mut values = vec![0.0f32; rows * columns];
    for (column, stored_column) in stored.chunks_exact(rows).enumerate() {
        for (row, &value) in stored_column.iter().enumerate() {
            values[row * columns + column] = value;
        }
    }
    Ok((rows, columns, values))
}

/// The exact `K` nearest base rows of every query, on every core.
fn exact_neighbours(base: &[f32], queries: &[f32], dimension: usize) -> Result<Vec<u32>, Error> {
    eprintln!("computing the exact neighbours of {} queries (once; cached)", queries.len() / dimension);
    let started = Instant::now();
    let exact = ExactIndex::new(dimension)?;
    exact.reserve(base.len() / dimension);
    for (row, vector) in base.chunks_exact(dimension).enumerate() {
        exact.insert(row as VectorKey, vector)?;
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let batch = 64 * dimension;
    let next = AtomicUsize::new(0);
    let mut truth = vec![0u32; queries.len() / dimension * K];
    let chunks: Vec<(usize, Vec<u32>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let start = next.fetch_add(batch, Ordering::Relaxed);
                        if start >= queries.len() {
                            return done;
                        }
                        let end = (start + batch).min(queries.len());
                        let hits = exact.search_batch(&queries[start..end], K).expect("unit queries");
                        let ids = hits.iter().flat_map(|hits| hits.iter().map(|hit| hit.key as u32)).collect();
                        done.push((start / dimension, ids));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|worker| worker.join().unwrap()).collect()
    });
    for (first_query, ids) in chunks {
        truth[first_query * K..first_query * K + ids.len()].copy_from_slice(&ids);
    }
    eprintln!("  done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(truth)
}

// ---------------------------------------------------------------------------
// agentd

/// One engine's figures, as both sides report them.
struct Figures {
    engine: String,
    /// (threads, seconds)
    builds: Vec<(usize, f64)>,
    index_bytes: f64,
    rss_delta_bytes: f64,
    sweep: Vec<SweepPoint>,
}

struct SweepPoint {
    ef: usize,
    recall: f64,
    /// Queries a second by thread count; 2 only where a target was first reached.
    qps: Vec<(usize, f64)>,
}

fn rss_bytes() -> f64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib * 1024.0)
}

fn build(prepared: &Prepared, params: HnswParams, threads: usize) -> Result<HnswIndex, Error> {
    let index = HnswIndex::new(prepared.dimension, params)?;
    index.reserve(prepared.base_count)?;
    let rows = prepared.base.chunks_exact(prepared.dimension).collect::<Vec<_>>();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let start = next.fetch_add(256, Ordering::Relaxed);
                    if start >= rows.len() {
                        return;
                    }
                    for (row, vector) in rows.iter().enumerate().skip(start).take(256) {
                        index.insert(row as VectorKey, vector).expect("a unit vector of the right dimension");
                    }
                }
            });
        }
    });
    Ok(index)
}

/// Searches every query, split between `threads`; returns the seconds taken
/// and the keys found, `K` a query.
fn search_all(index: &HnswIndex, prepared: &Prepared, threads: usize) -> (f64, Vec<VectorKey>) {
    let queries: Vec<&[f32]> = prepared.queries.chunks_exact(prepared.dimension).collect();
    let per_thread = queries.len().div_ceil(threads);
    let started = Instant::now();
    let found: Vec<Vec<VectorKey>> = std::thread::scope(|scope| {
        let workers: Vec<_> = queries
            .chunks(per_thread)
            .map(|share| {
                scope.spawn(move || {
                    let mut keys = Vec::with_capacity(share.len() * K);
                    for query in share {
                        let hits = index.search(query, K, None).expect("a unit query");
                        keys.extend(hits.iter().map(|hit| hit.key));
                        keys.resize(keys.len() + K - hits.len(), VectorKey::MAX);
                    }
                    keys
                })
            })
            .collect();
        workers.into_iter().map(|worker| worker.join().unwrap()).collect()
    });
    (started.elapsed().as_secs_f64(), found.concat())
}

fn recall(found: &[VectorKey], truth: &[u32]) -> f64 {
    let hits: usize = found
        .chunks_exact(K)
        .zip(truth.chunks_exact(K))
        .map(|(found, truth)| {
            let truth: HashSet<u32> = truth.iter().copied().collect();
            found.iter().filter(|&&key| key != VectorKey::MAX && truth.contains(&(key as u32))).count()
        })
        .sum();
    hits as f64 / truth.len() as f64
}

fn measure_agentd(prepared: &Prepared, params: HnswParams, efs: &[usize], options: &Options) -> Result<Figures, Error> {
    let mut builds = Vec::new();
    let (mut index_bytes, mut rss_delta_bytes) = (0.0, 0.0);
    let mut index = None;
    for threads in [1, 2] {
        drop(index.take()); // free the previous build before measuring the next
        let before = rss_bytes();
        let started = Instant::now();
        let built = build(prepared, params, threads)?;
        let seconds = started.elapsed().as_secs_f64();
        if builds.is_empty() {
            rss_delta_bytes = rss_bytes() - before;
            index_bytes = built.memory_usage() as f64;
        }
        eprintln!("  built with {threads} thread(s) in {seconds:.1} s ({})", built.hardware_acceleration());
        builds.push((threads, seconds));
        index = Some(built);
    }
    let index = index.expect("built");
    let sweep = sweep(
        |ef| index.set_expansion_search(ef),
        |threads| search_all(&index, prepared, threads),
        prepared,
        efs,
        options,
    );
    Ok(Figures { engine: "agentd HnswIndex".into(), builds, index_bytes, rss_delta_bytes, sweep })
}

/// Walks the ef values upwards: one single-thread pass each gives the
/// recall; the first ef reaching a target is timed again, best of
/// `repeats`, with one and two threads. Stops at the highest target.
fn sweep(
    set_ef: impl Fn(usize),
    search: impl Fn(usize) -> (f64, Vec<VectorKey>),
    prepared: &Prepared,
    efs: &[usize],
    options: &Options,
) -> Vec<SweepPoint> {
    let queries = (prepared.queries.len() / prepared.dimension) as f64;
    let mut targets = options.targets.clone();
    let mut points = Vec::new();
    for &ef in efs {
        set_ef(ef);
        let (seconds, found) = search(1);
        let recall = recall(&found, &prepared.truth);
        let mut point = SweepPoint { ef, recall, qps: vec![(1, queries / seconds)] };
        if targets.first().is_some_and(|&target| recall >= target) {
            targets.retain(|&target| recall < target);
            point.qps.clear();
            for threads in [1, 2] {
                let best = (0..options.repeats).map(|_| search(threads).0).fold(f64::INFINITY, f64::min);
                point.qps.push((threads, queries / best));
            }
        }
        eprintln!("  ef {ef:>4}: recall@{K} {recall:.4}, {:.0} queries/s", point.qps[0].1);
        points.push(point);
        if targets.is_empty() {
            break;
        }
    }
    points
}

// ---------------------------------------------------------------------------
// FAISS

fn run_faiss(
    python: &Path,
    repo: &Path,
    prepared: &Prepared,
    options: &Options,
    efs: &[usize],
) -> Result<Figures, Error> {
    let join = |values: &mut dyn Iterator<Item = String>| values.collect::<Vec<_>>().join(",");
    let output = Command::new(python)
        .arg(repo.join("bench/reference/ann_faiss.py"))
        .arg("--base")
        .arg(&prepared.base_file)
        .arg("--queries")
        .arg(&prepared.queries_file)
        .arg("--truth")
        .arg(&prepared.truth_file)
        .args(["--dim", &prepared.dimension.to_string(), "--k", &K.to_string()])
        .args(["--m", &options.m.to_string(), "--ef-construction", &options.ef_construction.to_string()])
        .args(["--ef", &join(&mut efs.iter().map(ToString::to_string))])
        .args(["--targets", &join(&mut options.targets.iter().map(ToString::to_string))])
        .args(["--repeats", &options.repeats.to_string()])
        .stderr(Stdio::inherit())
        .output()?;
    if !output.status.success() {
        return Err(format!("ann_faiss.py failed ({})", output.status).into());
    }
    let report: Value = serde_json::from_slice(&output.stdout)?;
    let number = |value: &Value| value.as_f64().unwrap_or(f64::NAN);
    let builds = report["build"]
        .as_array()
        .ok_or("no build figures from FAISS")?
        .iter()
        .map(|build| (build["threads"].as_u64().unwrap_or(0) as usize, number(&build["seconds"])))
        .collect();
    let sweep = report["sweep"]
        .as_array()
        .ok_or("no sweep from FAISS")?
        .iter()
        .map(|point| {
            let mut qps: Vec<(usize, f64)> = point["qps"]
                .as_object()
                .map(|qps| qps.iter().filter_map(|(t, v)| Some((t.parse().ok()?, number(v)))).collect())
                .unwrap_or_default();
            qps.sort_by_key(|&(threads, _)| threads);
            SweepPoint { ef: point["ef"].as_u64().unwrap_or(0) as usize, recall: number(&point["recall"]), qps }
        })
        .collect();
    Ok(Figures {
        engine: report["engine"].as_str().unwrap_or("faiss").to_owned(),
        builds,
        index_bytes: number(&report["index_bytes"]),
        rss_delta_bytes: number(&report["rss_delta_bytes"]),
        sweep,
    })
}

// ---------------------------------------------------------------------------
// The table

type Row = (String, String, String, String);

/// One table row; the ratio is agentd's advantage (> 1: agentd better).
fn row(measure: String, ours: Option<f64>, theirs: Option<f64>, lower_is_better: bool, decimals: usize) -> Row {
    let show = |value: Option<f64>| value.map_or("—".to_owned(), |v| format!("{v:.decimals$}"));
    let ratio = match (ours, theirs) {
        (Some(ours), Some(theirs)) if ours > 0.0 && theirs > 0.0 => {
            format!("{:.2}", if lower_is_better { theirs / ours } else { ours / theirs })
        }
        _ => String::new(),
    };
    (measure, show(ours), show(theirs), ratio)
}

fn reached(figures: &Figures, target: f64) -> Option<&SweepPoint> {
    figures.sweep.iter().find(|point| point.recall >= target)
}

fn qps(point: &SweepPoint, threads: usize) -> f64 {
    point.qps.iter().find(|&&(t, _)| t == threads).map_or(0.0, |&(_, qps)| qps)
}

/// Over the rounds, the best queries/s at the lowest ef reaching `target`,
/// with that round's ef and recall.
fn best_reached(rounds: &[Figures], target: f64) -> Option<SweepPoint> {
    let reached: Vec<&SweepPoint> = rounds.iter().filter_map(|round| reached(round, target)).collect();
    let best = reached.iter().max_by(|a, b| qps(a, 1).total_cmp(&qps(b, 1)))?;
    let two = reached.iter().map(|point| qps(point, 2)).fold(0.0, f64::max);
    Some(SweepPoint { ef: best.ef, recall: best.recall, qps: vec![(1, qps(best, 1)), (2, two)] })
}

/// The shortest build over the rounds.
fn best_build(rounds: &[Figures], threads: usize) -> Option<f64> {
    rounds
        .iter()
        .flat_map(|round| round.builds.iter().filter(|&&(t, _)| t == threads).map(|&(_, seconds)| seconds))
        .min_by(f64::total_cmp)
}

fn print_table(agentd: &[Figures], faiss: &[Figures], options: &Options) {
    let mut rows: Vec<Row> = Vec::new();
    let mib = |bytes: f64| bytes / (1024.0 * 1024.0);
    for threads in [1, 2] {
        let measure = format!("build, {threads} thread{} (s)", if threads == 1 { "" } else { "s" });
        rows.push(row(measure, best_build(agentd, threads), best_build(faiss, threads), true, 1));
    }
    // From the first round: a later one reuses memory the allocator kept.
    let memory = |rounds: &[Figures], of: fn(&Figures) -> f64| rounds.first().map(|round| mib(of(round)));
    rows.push(row(
        "index memory (MiB)".into(),
        memory(agentd, |f| f.index_bytes),
        memory(faiss, |f| f.index_bytes),
        true,
        1,
    ));
    rows.push(row(
        "RSS growth while building (MiB)".into(),
        memory(agentd, |f| f.rss_delta_bytes),
        memory(faiss, |f| f.rss_delta_bytes),
        true,
        1,
    ));
    for &target in &options.targets {
        let (ours, theirs) = (best_reached(agentd, target), best_reached(faiss, target));
        let label = format!("recall@{K} ≥ {target:.2}");
        let ef = |point: &Option<SweepPoint>| {
            point.as_ref().map_or("not reached".to_owned(), |p| format!("{} ({:.4})", p.ef, p.recall))
        };
        rows.push((format!("{label}: lowest ef (recall there)"), ef(&ours), ef(&theirs), String::new()));
        for threads in [1, 2] {
            let measure = format!("{label}: queries/s, {threads} thread{}", if threads == 1 { "" } else { "s" });
            let (a, b) = (ours.as_ref().map(|p| qps(p, threads)), theirs.as_ref().map(|p| qps(p, threads)));
            rows.push(row(measure, a, b, false, 0));
        }
    }

    let faiss_name = faiss.first().map_or("FAISS (skipped)", |f| f.engine.as_str());
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "\n{} vs {faiss_name}: GloVe 6B 50d, {} queries, M={}, efConstruction={}, cosine, best of {} round(s) \
         (ratio > 1: agentd better)\n",
        agentd.first().map_or("agentd", |f| f.engine.as_str()),
        options.queries,
        options.m,
        options.ef_construction,
        options.rounds
    );
    let _ = writeln!(out, "| measure | agentd | FAISS | ratio |\n|---|---|---|---|");
    for (measure, ours, theirs, ratio) in rows {
        let _ = writeln!(out, "| {measure} | {ours} | {theirs} | {ratio} |");
    }
}
