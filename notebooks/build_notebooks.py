"""Write the study's notebooks 00-06 from this one script, so that they stay thin and consistent.

Run ``python notebooks/build_notebooks.py`` after editing; the notebooks are committed without
outputs or execution counts (papermill writes executed copies under ``<workdir>/notebooks/executed``).
Every notebook: a markdown cell (purpose / reads / writes), a ``parameters`` cell of literals,
a setup cell, then short steps of one or two calls into ``avseld`` plus a display.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

PARAMETERS = '''\
profile = "default"  # type: str profile name (smoke, default, paper) or a YAML file
workdir = ".."  # type: str root of everything generated (data/, figures/); the repository when run from notebooks/
data_root = ""  # type: str dataset root; empty means <workdir>/<data.root of the profile>
seeds = []  # type: list[int] training seeds; empty means the profile's report.seeds
device = "auto"  # type: str auto, cpu or cuda'''

SETUP = '''\
%matplotlib inline
from IPython.display import Markdown, display

from avseld import report, study, viz

study.configure_runtime()
st = study.open_study(profile, workdir, data_root, seeds, device)
display(Markdown(st.describe()))'''


def header(title: str, purpose: str, reads: str, writes: str) -> str:
    return f"# {title}\n\n**Purpose.** {purpose}\n\n**Reads.** {reads}\n\n**Writes.** {writes}"


def notebook(cells: list) -> nbformat.NotebookNode:
    """Assemble: header markdown, parameters cell (tagged), setup cell, then the steps."""
    head, steps = cells[0], cells[1:]
    params = new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]})
    nb = new_notebook(cells=[new_markdown_cell(head), params, new_code_cell(SETUP), *steps])
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (avseld)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    return nb


md, code = new_markdown_cell, new_code_cell

NOTEBOOKS: dict[str, list] = {}

NOTEBOOKS["00_data_exploration"] = [
    header("00 · Data exploration",
           "locate the dataset (or generate the embedded synthetic one) and look at what the task asks: "
           "classes, polyphony, directions, distances, on-screen share, and one clip as sound and picture.",
           "the dataset root (`stereo_dev/`, `video_dev/`, `metadata_dev/`).",
           "the synthetic dataset when missing; `figures/dataset_statistics.png`, `figures/clip_example.png`."),
    md("## 1. Locate or generate the data\nSynthetic profiles generate a deterministic dataset in the exact "
       "DCASE 2025 layout (fold3 train rooms, fold4 test rooms); the `paper` profile expects the real "
       "Stereo SELD data at the data root and never downloads anything."),
    code("root = study.ensure_dataset(st)\nroot"),
    md("## 2. Label statistics\nOne row per split. A label row is one active event in one 100-ms frame; "
       "azimuth is folded to [-90°, 90°] (front-back ambiguity of the stereo pair), distance is in cm."),
    code("from avseld import stats\n\nlabels = stats.load_labels(root)\n"
         "display(stats.split_table(stats.summarise_labels(labels)))"),
    code("fig = viz.plot_dataset_statistics(stats.label_table(labels))\n"
         "viz.save_figure(fig, st.figures_dir / 'dataset_statistics.png')\nfig"),
    md("## 3. One clip: log-mel of both channels, the frames the visual backbone sees, the reference events\n"
       "The level difference between the two log-mels is the main direction cue; the frame strip is "
       "sampled at 10 fps by timestamp, one frame per label frame."),
    code("example = study.load_example_clip(st)\nfig = viz.plot_clip(**example)\n"
         "viz.save_figure(fig, st.figures_dir / 'clip_example.png')\nfig"),
]

NOTEBOOKS["01_feature_caching"] = [
    header("01 · Feature caching",
           "extract, once, the stereo log-mel features and the per-frame visual features every system of "
           "the study needs, into caches keyed by the feature-config hash.",
           "the dataset root.",
           "`data/cache/<feature-hash>/` (one per distinct feature configuration: baseline-mode visual maps "
           "for the baseline and AV-SELD; AV-SELD+'s full-view tokens from the backbone's stride-8 map)."),
    md("## 1. Build the caches\nAlready-built caches are found and skipped; an interrupted extraction resumes. "
       "Each cache stores the feature config that made it (`feature_config.yaml`)."),
    code("caches = study.ensure_features(st)\ncaches"),
    md("## 2. What is cached\nAudio `(N, C, T=251, 64)`; visual `(N, 50, 49)` in baseline mode "
       "(channel-mean of the backbone's last feature map, as the official recipe) or "
       "`(N, 50, tokens, dim)` in full-view mode."),
    code("display(study.cache_summary(caches))"),
]

NOTEBOOKS["02_baseline_replication"] = [
    header("02 · Baseline replication",
           "train the official DCASE 2025 audio-visual baseline replica (`baseline_av`) on every seed.",
           "the dataset and the baseline-mode feature cache.",
           "`data/runs/baseline_av-<hash>-s<seed>/` (config, checkpoints, log.jsonl, predictions, metrics); "
           "`figures/training_curves_baseline.png`."),
    md("## What \"replica\" means here\nLayer for layer the official SELDnet (3 conv blocks, 2-layer gated "
       "BiGRU, 8-head self-attention, Linear visual embedding, 2-layer Transformer decoder fusion, "
       "Multi-ACCDOA with on-screen output), the official ADPIT loss and decoding, including the "
       "baseline's on-screen decision by truncation (`eval.onscreen_decision=truncate`). One deliberate "
       "difference: the checkpoint is selected on validation rooms held out from training, not on "
       "dev-test as the official script does, so dev-test stays a test set."),
    md("## 1. Train (finished runs are found and skipped)\nRun ids are `<model>-<config hash>-s<seed>`, so "
       "a rerun with the same profile reuses the runs and notebooks 03-05 find them by the same rule."),
    code("runs = study.run_system(st, 'baseline_av')\ndisplay(report.run_summary(runs, st.workdir))"),
    md("## 2. Training curves (from each run's `log.jsonl`)"),
    code("fig = viz.plot_training_curves({'Baseline replica': runs})\n"
         "viz.save_figure(fig, st.figures_dir / 'training_curves_baseline.png')\nfig"),
]

NOTEBOOKS["03_avseld_training"] = [
    header("03 · AV-SELD training",
           "train the seed report's AV-SELD and our AV-SELD+ on the same seeds as the baseline.",
           "the dataset and the feature caches of notebook 01.",
           "`data/runs/avseld-…`, `data/runs/avseld_plus-…`; `figures/training_curves_avseld.png`."),
    md("""## The report's ambiguities, and the choices made
The technical report describes AV-SELD in prose only. Every gap, and what this code does (each is a config field or a registered variant, so it can be changed):

| # | The report says | Ambiguity | Choice here |
|---|---|---|---|
| 1 | ATEM: dual-head self-attention, batch-first, learnable QKV, "moderate dropout" | where it sits; layers; dropout value; residual/norm | after the BiGRU, in place of the baseline's 8-head MHSA stack: `model.atem_heads=2`, `model.atem_layers=2`, attention dropout 0.1, each layer residual + LayerNorm like the baseline MHSA |
| 2 | VFEM: linear projection, LayerNorm, ReLU, configurable dropout, residual | how the residual is wired (what it skips) | `v = Wx; out = v + Dropout(ReLU(LN(v)))` (`model.vfem_wiring=residual`; `plain` drops the skip); `model.vfem_dropout=0.1` |
| 3 | "features extracted by the pretrained ResNet-50" | which features (the baseline's 49-value channel-mean map, or richer) | AV-SELD: exactly the baseline's per-frame 7×7 channel-mean map; AV-SELD+ takes richer full-view tokens (the whole frame, the backbone's stride-8 map, 1 × 12 tokens of 40 channels) and its ablation `plus_centre_map` the baseline's map |
| 4 | fusion: Transformer decoder with cross-attention | layers, heads, feed-forward size | as the baseline decoder: 2 layers, 8 heads, feed-forward 2048, dropout 0.1; audio frames are the queries, visual frames the memory |
| 5 | multi-task head: DOA tanh, distance ReLU, on-screen sigmoid | shared trunk; branch depth; track layout | one shared Linear then three parallel branches of one Linear each (`model.head_depth=1`; `2` gives Linear-ReLU-Linear branches, which on the `default` profile stall learning behind the fusion decoder, see the README's "What the default study shows") with those activations, laid out as the baseline's Multi-ACCDOA (3 tracks × (x, y, distance, on-screen) × 13) so loss and decoding are unchanged |
| 6 | "rigorously reproduced the challenge baseline" | what "replicated baseline" is (their own retraining?) | our `baseline_av` replica trained with the same recipe and seeds as AV-SELD (notebook 02) |
| 7 | training setup | epochs, batch, learning rate, schedule | the profile's: same for every system; the `paper` profile uses the baseline's (200 epochs, batch 256, Adam 1e-3) |
| 8 | evaluated on dev-test | which checkpoint (best on dev-test, as the baseline script does, is optimistic) | best on a validation split of held-out *training rooms* (`train.select_on=val`); dev-test only scored |
| 9 | OSA "marginal deficit" | how on-screen is decided | AV-SELD keeps the baseline's truncation; AV-SELD+ thresholds the on-screen probability with a threshold chosen on the validation rooms (`eval.tune_onscreen_threshold`); the masked BCE is an ablation (`plus_onscreen_mask`) |
| 10 | (not in the report) the synthetic profiles | ResNet-50 at 224 px costs ~6 s per clip on a 2-core CPU | `smoke`/`default` use the ImageNet EfficientNet-Lite0 shipped in a PyPI package (offline) on 112-px crops: a 4×4 channel-mean map (16 values per frame) with the official crop geometry; `paper` uses ResNet-50 exactly as the baseline (49 values) |
| 11 | (not in the report) CPU training budget | the `default` study must fit in under an hour on 2 cores | one recipe for every system of the profile: log-mel standardised with the training split's statistics (`train.standardize`), batch 8, Adam with a 5 % linear warm-up to 1e-3 and a per-step cosine decay to 1e-5 (`train.scheduler=warmup_cosine`), 28 epochs, bfloat16 autocast on the CPU, two single-threaded runs side by side (`report.parallel_runs=2`); three seeds for Table 1 and a fourth for the replica, its reference (`report.reference_extra_seeds`), two for the ablations. The `paper` profile keeps the official recipe (200 epochs, batch 256, Adam 1e-3, float32 with AMP on a GPU) |
"""),
    md("## 1. Train AV-SELD and AV-SELD+ (finished runs are skipped)\nAV-SELD+ is AV-SELD with five changes. "
       "(1) Full-view visual tokens: the whole 100-degree frame at 192x96 through EfficientNet-Lite0 up to its "
       "stride-8 map (40 channels; the backbone stops there), pooled to 1 row x 12 columns, one token per twelfth "
       "of the width (the baseline's map is the channel mean of the last map of the centre crop, about +-31 "
       "degrees). (2) The fusion decoder, one layer instead of two, feeds only the on-screen branch; DOA and "
       "distance read the audio frames (`model.fused_heads=onscreen`). (3) Cross-attention restricted to the "
       "video frames within +-1 frame of each audio frame. (4) The distance in units of 2 m in the loss "
       "(`train.distance_scale_m=2`: a distance error weighs a quarter of what it does in metres, so x and y get "
       "a larger share of the gradient; the model still predicts metres). (5) An on-screen decision by a "
       "threshold chosen on the validation rooms (0.05 ... 0.95, or 1.0: every event off-screen) instead of the "
       "baseline's truncation. Notebook 04 takes (1) and (2) out, each on two seeds; notebook 05 re-decodes the "
       "outputs with the truncation, and zeroes or swaps the picture. (3) and (4) were measured in the study at "
       "67368b7 (README, `plus_no_window`, `plus_no_dscale` in the full ablation set). "
       "What was tried and left out, measured (README, \"How the recipe was chosen\"): a left-minus-right "
       "log-mel input channel (`plus_ld`); the finer tokens with every branch fused (they raised OSA and cost "
       "azimuth); the masked on-screen loss; the left-right swap, with or without test-time mirroring "
       "(`eval.mirror_tta`)."),
    code("runs = study.run_systems(st, ['avseld', 'avseld_plus'])\n"
         "display(report.run_summary(runs['avseld'] + runs['avseld_plus'], st.workdir))"),
    md("## 2. Training curves"),
    code("fig = viz.plot_training_curves(study.by_label(runs))\n"
         "viz.save_figure(fig, st.figures_dir / 'training_curves_avseld.png')\nfig"),
]

NOTEBOOKS["04_ablations"] = [
    header("04 · Ablations",
           "measure what each component contributes, each variant against its reference on the same seeds: "
           "the report's ATEM and VFEM against AV-SELD, and each ingredient of AV-SELD+ against AV-SELD+.",
           "the feature caches; the `avseld` and `avseld_plus` runs of notebook 03 (reused, not retrained).",
           "`data/runs/<variant>-…`; `figures/ablations.csv`, `figures/ablations.md`, `figures/ablations.png`, "
           "`figures/ablation_differences.{csv,md}`."),
    md("## 1. Train the variants (the references of notebook 03 are found, not retrained)\nThe list comes from "
       "the profile's `report.ablations` (the `default` profile runs AV-SELD+'s two new ingredients: the "
       "baseline's centre-crop map instead of its full-view tokens, and every output branch fused; "
       "`avseld.config.ReportConfig` lists "
       "the full set); each is a model variant plus config overrides with its reference "
       "(`avseld.study.SYSTEMS`). The seeds are `report.ablation_seeds` (empty: the study's seeds; two on "
       "`default`). Only the intervals of section 3 say whether a change is more than chance."),
    code("print('ablation seeds', list(st.ablation_seeds))\n"
         "runs = study.run_systems(st, study.ablation_keys(st), st.ablation_seeds)\n"
         "display(report.run_summary([d for ds in runs.values() for d in ds], st.workdir))"),
    md("## 2. Table: means over seeds and the change against the reference\nScored from each run's saved "
       "prediction CSVs. Higher F and OSA, lower DOAE and RDE are better."),
    code("table = report.ablation_table(study.ablation_runs(st), study.ablation_references(st.cfg.report.ablations), st.workdir)\n"
         "report.write_ablations(table, st.figures_dir)\ndisplay(Markdown(report.ablation_markdown(table)))"),
    code("fig = viz.plot_ablations(table)\nviz.save_figure(fig, st.figures_dir / 'ablations.png')\nfig"),
    md("## 3. The changes with their 95 % intervals\nPaired bootstrap over test clips with the seeds pooled, "
       "as for Table 1 (notebook 05); **bold**: the interval excludes 0."),
    md("What the `default` study found is in the README (\"What the default study shows\"), from the "
       "fresh-clone study that wrote `figures/`."),
    code("ablation_diffs = report.comparison_table(study.ablation_comparisons(st))\n"
         "report.write_comparisons(ablation_diffs, st.figures_dir, 'ablation_differences')\n"
         "display(Markdown(report.comparison_markdown(ablation_diffs)))"),
]

NOTEBOOKS["05_results"] = [
    header("05 · Results: Table 1 and the figures",
           "rebuild Table 1 and the paper figures from the saved run records alone (no kernel state, "
           "no training): every number is re-scored from the prediction CSVs the runs wrote.",
           "`data/runs/*/` of the three systems (`metrics.json`, `predictions/`, `log.jsonl`).",
           "`figures/table1.csv` (unrounded), `figures/table1.md`, `figures/table1.png`, "
           "`figures/table1_differences.{csv,md}`, `figures/seeds_and_differences.png`, `figures/convergence.{csv,md}`, "
           "`figures/classwise_f20.csv`, `figures/classwise_f20.png`, `figures/training_curves.png`, "
           "`figures/trajectories.png`, `figures/onscreen_confusion.png`, `figures/azimuth_agreement.{csv,md}`."),
    md("## 1. Table 1\nThe report's three rows (STARSS23 dev-test, `source = published`) and this study's "
       "rows (mean ± sample standard deviation over seeds, ddof=1, on this profile's dev-test). F, RDE and OSA "
       "in %, DOAE in degrees. The "
       "two halves are on different data, so compare the *differences* between rows, not the rows."),
    code("systems = study.table1_runs(st)\ntable, std = report.build_table1(systems, st.workdir)\n"
         "report.write_table1(table, std, st.figures_dir)\ndisplay(Markdown(report.table1_markdown(table, std)))"),
    code("fig = viz.plot_table1(table, std)\nviz.save_figure(fig, st.figures_dir / 'table1.png')\nfig"),
    md("## 2. Differences with their 95 % intervals, and the video controls\n"
       "Each system against the baseline replica, our AV-SELD+ against the report's AV-SELD, then each video "
       "system against itself with the picture "
       "taken away: every visual feature set to 0 (*video zeroed*), or the visual features of another test "
       "clip (*video of another clip*, a fixed derangement); AV-SELD+ also against its own outputs decoded "
       "with the baseline's on-screen truncation (what its tuned threshold adds). The intervals are a paired bootstrap over the "
       "test clips (2000 draws, the same draw for both sides), with each system's seeds pooled "
       "(`avseld.intervals`: why this interval). **Bold**: the interval excludes 0. The controls are "
       "evaluations of the trained runs, not new trainings: they say how much the trained model uses the "
       "picture on this data."),
    code("comparisons = report.comparison_table(study.table1_comparisons(st, study.controls(st)))\n"
         "report.write_comparisons(comparisons, st.figures_dir, 'table1_differences')\n"
         "display(Markdown(report.comparison_markdown(comparisons)))\n"
         "print(f'largest 95 % half-width of a F20 difference here: "
         "{report.smallest_detectable_difference(comparisons):.1f} points')"),
    code("scores = report.seed_scores(systems, workdir=st.workdir)\n"
         "fig = viz.plot_seeds_and_differences(scores, comparisons)\n"
         "viz.save_figure(fig, st.figures_dir / 'seeds_and_differences.png')\nfig"),
    md("What the `default` study found is in the README (\"What the default study shows\"), from the "
       "fresh-clone study that wrote `figures/`."),
    md("## 3. Did every run converge?\nValidation F20 at the last epoch and its gain over the last quarter of "
       "the epochs (converged: less than 1 point), for every run of Table 1 and of the ablations."),
    code("convergence = report.convergence_table(study.all_finished_runs(st), st.workdir)\n"
         "report.write_convergence(convergence, st.figures_dir)\n"
         "display(Markdown(report.convergence_markdown(convergence)))"),
    md("## 4. Per-class F20 (mean over seeds)"),
    code("classwise = report.classwise_table(systems)\n"
         "classwise.to_csv(st.figures_dir / 'classwise_f20.csv', float_format='%.6g')\ndisplay(classwise.round(1))"),
    code("fig = viz.plot_classwise(classwise)\nviz.save_figure(fig, st.figures_dir / 'classwise_f20.png')\nfig"),
    md("## 5. Training curves of the three systems"),
    code("fig = viz.plot_training_curves(systems)\nviz.save_figure(fig, st.figures_dir / 'training_curves.png')\nfig"),
    md("## 6. Predicted against reference trajectories (AV-SELD, first seed, the busiest test clip)"),
    code("clip, ref, pred = report.load_clip_pair(study.finished_runs(st, study.ABLATION_REFERENCE)[0])\n"
         "fig = viz.plot_trajectories(ref, pred, clip)\nviz.save_figure(fig, st.figures_dir / 'trajectories.png')\nfig"),
    md("## 7. On-screen decisions of matched events\nReference events matched to the same-class prediction "
       "in the same frame within 20°; rows are the reference, columns the prediction."),
    code("fig = viz.plot_onscreen_confusions({k: report.onscreen_confusion(v) for k, v in systems.items()})\n"
         "viz.save_figure(fig, st.figures_dir / 'onscreen_confusion.png')\nfig"),
    md("## 8. Did each run learn azimuth?\nPredicted against reference azimuth over the (clip, frame, class) "
       "cells with exactly one reference and one predicted event, for every run of Table 1 and of the "
       "ablations (when 04 has run). A run with correlation and slope near 0 puts every event near the "
       "front (small `mean_abs_pred`): it failed to learn azimuth within its budget, whatever its "
       "detection, and its F20 says so. On the `default` profile this, more than the system, decides "
       "many single-seed comparisons (README, \"What the default study shows\")."),
    code("azimuth = report.azimuth_table(study.all_finished_runs(st), st.workdir)\n"
         "report.write_azimuth_table(azimuth, st.figures_dir)\ndisplay(Markdown(report.azimuth_markdown(azimuth)))"),
]

NOTEBOOKS["06_attention_explorer"] = [
    header("06 · Attention explorer",
           "look inside the trained models: the audio self-attention (ATEM, or the baseline's MHSA) and the "
           "audio-to-video cross-attention of the fusion decoder, for a chosen clip, model, layer and head.",
           "the first-seed runs of the three systems (best checkpoints), their feature caches, the test videos.",
           "`figures/attention_<model>_<clip>.png` (the default view of each model; written when run headless)."),
    md("## 1. Build the explorer\nOne forward pass with `return_attention=True` per model and clip; "
       "every other change only redraws. Full-view tokens are summed per video frame. Every panel shares one "
       "time axis in seconds: the spectrogram, the self-attention (key time across, query time up), the "
       "cross-attention (video frame time across), the reference events, the model's saved predicted events "
       "(azimuth over time; colour = class, o on-screen, x off-screen) and the frame strip."),
    code("explorer = study.attention_explorer(st)\nsaved = explorer.save_default_views(st.figures_dir)\nsaved"),
    md("## 2. Explore\nPick a clip, a model, and a layer and head for each attention module (each dropdown "
       "offers the layers and heads that module of that model has: AV-SELD's ATEM has 2 heads, its fusion "
       "decoder 8). In a model that may attend to every video frame (the replica, AV-SELD), a diagonal "
       "cross-attention means the model looks at the video frame of the same time and a vertical stripe that "
       "one moment's picture serves the whole clip. AV-SELD+ attends only to the frames within +-1 of each "
       "audio frame **by construction** (`model.fusion_window=1`): its diagonal band is that window, drawn as 0 "
       "outside it, and only the weights inside the band are learnt: the explorer draws outside-the-window "
       "grey (masked), not as weak attention.\n\n"
       "The spectrogram shows the left or right log-mel, or their level difference (left − right, the azimuth "
       "cue). Each map is coloured over its own range unless *one colour scale* is ticked (0 to the largest "
       "weight of any layer and head of that module), and a map whose every weight is within ±10 % of uniform "
       "(1 / the keys its query may attend) says *near uniform* in its title: there, colour contrast is noise."),
    code("explorer.show()  # the widget, and below it a picture of the current view that a saved notebook keeps"),
]


def build(out_dir: Path = HERE) -> list[Path]:
    """Write every notebook (no outputs, no execution counts); return the paths."""
    paths = []
    for stem, cells in NOTEBOOKS.items():
        nb = notebook(cells)
        for i, c in enumerate(nb.cells):
            c["id"] = f"{stem[:2]}-{i:02d}"  # stable ids: a rebuild changes nothing
        nbformat.validate(nb)
        path = out_dir / f"{stem}.ipynb"
        path.write_text(nbformat.writes(nb) + "\n")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(p)
