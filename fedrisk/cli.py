"""The ``fedrisk`` command.

Exit codes: 0 success, 2 bad input (one line on stderr, no traceback, no run folder
left behind), 1 a party broke the protocol (one line naming the round and party) or an
internal failure.

The commands import what they need inside their functions, for start-up time: ``--help``
and bad input answer before numpy, scikit-learn or Flower load, and ``run`` starts the
banks' Paillier key ceremony on the other core before the heavy imports.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings
from pathlib import Path

from fedrisk.errors import InputError, ProtocolError, RunInterrupted, Terminated
from fedrisk.i18n import ENV, N_, resolve_language, using_language
from fedrisk.i18n import gettext as _
from fedrisk.version import __version__


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 2 like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="fedrisk",
        description="Federated credit-risk modelling through "
        "Flower, with the privacy costs measured.",
    )
    p.add_argument("--version", action="version", version=f"fedrisk {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser(
        "run",
        help="run one scenario and write its run folder",
        description="Run one scenario through Flower and write its run folder "
        "(summary.json, rounds.csv, transcript.jsonl, model, plots).",
        epilog="examples:\n"
        "  fedrisk run scenarios/quickstart.toml --out runs/q\n"
        "  fedrisk run scenarios/quickstart.toml --set privacy.aggregation=paillier "
        "--set rounds=30\n"
        "  fedrisk run my.toml --engine simulation --secrets ~/fedrisk.secrets\n\n"
        "Every scenario key, its default and allowed values: `fedrisk keys` "
        "(or README, 'Scenario files').",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("scenario", type=Path, nargs="?", help="scenario TOML file")
    run.add_argument("--out", type=Path, help="run folder (default runs/<name>-<time>/)")
    run.add_argument(
        "--engine", help="override federation.engine: inprocess | simulation | deployment"
    )
    run.add_argument(
        "--resume",
        type=Path,
        metavar="DIR",
        help="continue an interrupted in-process run that was writing DIR",
    )
    run.add_argument(
        "--superlink",
        metavar="HOST:PORT",
        help="deployment: submit to this running SuperLink (its Control API) "
        "instead of starting a local federation",
    )
    run.add_argument(
        "--root-certificates",
        type=Path,
        metavar="PEM",
        help="deployment with --superlink: the CA certificate of its TLS",
    )
    run.add_argument(
        "--insecure",
        action="store_true",
        help="deployment: no TLS and no SuperNode authentication (testing only)",
    )
    run.add_argument(
        "--bank-files",
        type=Path,
        metavar="DIR",
        help="deployment with --superlink: the folder `fedrisk data split` "
        "wrote for the banks' SuperNodes (its Paillier key decodes results)",
    )
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a scenario value (repeatable)",
    )
    _add_secrets_option(run)
    _add_lang_option(run)
    run.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar or result table; only the results folder (and warnings)",
    )
    run.add_argument(
        "--verbose",
        action="store_true",
        help="show Flower's own logs and tracebacks of internal errors",
    )

    sweep = sub.add_parser(
        "sweep", help="run a scenario over a grid of values and draw the privacy/accuracy curve"
    )
    sweep.add_argument("scenario", type=Path, help="scenario TOML file")
    sweep.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=V1,V2,...",
        help="a comma list makes one point per value (lists multiply); "
        "a single value is a plain override",
    )
    sweep.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="runs per point, with seeds seed, seed+1, ... (default 1)",
    )
    sweep.add_argument("--out", type=Path, help="sweep folder (default runs/sweep-<name>-<time>/)")
    sweep.add_argument("--engine", help="override federation.engine")
    _add_secrets_option(sweep)
    sweep.add_argument(
        "--quiet", action="store_true", help="no progress bar or table; only the sweep folder"
    )
    _add_lang_option(sweep)

    demo = sub.add_parser("demo", help="a narrated walk-through of joint modelling (~2 min)")
    demo.add_argument("--no-pause", action="store_true", help="do not wait between steps")
    demo.add_argument("--out", type=Path, help="demo folder (default runs/demo-<time>/)")
    _add_secrets_option(demo)
    _add_lang_option(demo)

    keys = sub.add_parser(
        "keys", help="every scenario key: default, allowed values, which runs read it"
    )
    keys.add_argument(
        "--kind",
        choices=("horizontal", "vertical"),
        help="only the keys a run of this kind reads",
    )

    score = sub.add_parser(
        "score",
        help="score applicants with a vertical run's joint model; the data parties do not "
        "learn whom the bank asks about (anonymous query: OPRF + PIR)",
    )
    score.add_argument("dir", type=Path, help="vertical run folder written by fedrisk run")
    score.add_argument(
        "--ids",
        type=Path,
        required=True,
        metavar="FILE",
        help="CSV of applicants: the id column (data.id) and, for applicants the bank does "
        "not have on file, the bank's model columns",
    )
    score.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="FILE",
        help="CSV of scores (id, pd, model, found_<party>); its .summary.json and "
        ".transcript.jsonl are written beside it",
    )
    score.add_argument(
        "--scenario",
        type=Path,
        metavar="FILE",
        help="the scenario file the run was made from, when its data paths are relative "
        "(default: DIR/scenario.toml)",
    )
    _add_secrets_option(score)
    score.add_argument("--quiet", action="store_true", help="no progress bar or table")
    _add_lang_option(score)

    report = sub.add_parser("report", help="write one self-contained HTML report for a run folder")
    report.add_argument("dir", type=Path, help="run folder written by fedrisk run")
    report.add_argument("--out", type=Path, help="HTML file (default DIR/report.html)")
    _add_lang_option(report)

    data = sub.add_parser(
        "data",
        help="describe the bundled data sets and their licences; "
        "`data split` writes each bank's rows for its SuperNode",
    )
    data_sub = data.add_subparsers(dest="data_command", parser_class=_Parser)
    split = data_sub.add_parser(
        "split",
        help="one file per bank (and the banks' Paillier key) for SuperNodes on other machines; "
        "vertical: one per data party, and the bank's rows and key for its ServerApp",
    )
    split.add_argument("scenario", type=Path, help="scenario TOML file")
    split.add_argument("--out", type=Path, required=True, help="new folder for the files")
    split.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a scenario value (repeatable)",
    )
    return p


def _add_lang_option(parser: argparse.ArgumentParser) -> None:
    """--lang, the same on every command that talks to people."""
    parser.add_argument(
        "--lang",
        metavar="LANG",
        help="language of the narration, tables, report and charts: en (default) or zh "
        f"(简体中文); default: ${ENV} if set, else en. Files for machines "
        "(summary.json, transcript.jsonl, CSV) do not change",
    )


def _add_secrets_option(parser: argparse.ArgumentParser) -> None:
    """--secrets FILE, the same on every command that runs parties."""
    parser.add_argument(
        "--secrets",
        type=Path,
        metavar="FILE",
        help="reproducible randomness: each party's secret derived from the master "
        "secret in FILE (created, owner-only, when missing; keep it outside run folders). "
        "Default: fresh secrets from the OS for every run",
    )


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"fedrisk: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    warnings.showwarning = _one_line_warning  # warnings are for users: one line each
    verbose = "--verbose" in argv
    try:
        args = build_parser().parse_args(argv)
        # the language for this command only: an in-process caller gets its own back
        with using_language(resolve_language(getattr(args, "lang", None))):
            with _stop_on_termination():
                return _dispatch(args)
    except InputError as exc:
        for line in str(exc).splitlines():  # a scenario's problems: one line each
            print(f"fedrisk: error: {line}", file=sys.stderr)
        return 2
    except ProtocolError as exc:
        if getattr(exc, "resumable", False):
            print(f"fedrisk: run stopped: {exc}", file=sys.stderr)
        else:
            print(
                f"fedrisk: protocol error: {exc}; the run was stopped and no run folder "
                "was written",
                file=sys.stderr,
            )
        return 1
    except RunInterrupted as exc:  # a checkpoint was kept: the message says where
        print(f"fedrisk: {exc}", file=sys.stderr)
        return 128 + exc.signum
    except Terminated as exc:
        print(
            f"fedrisk: stopped by {exc.signal_name}; no results were written and no "
            "partial folder was left behind",
            file=sys.stderr,
        )
        return 128 + exc.signum
    except KeyboardInterrupt:
        print(
            "fedrisk: interrupted; no results were written and no partial folder was left behind",
            file=sys.stderr,
        )
        return 130
    except BrokenPipeError:  # the reader went away (`fedrisk keys | head`): not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - flushed at exit, never read
        return 0
    except Exception as exc:  # a bug, not the user's fault
        if verbose:
            traceback.print_exc()
        print(
            f"fedrisk: internal error: {type(exc).__name__}: {exc}"
            + ("" if verbose else " (rerun with --verbose for the traceback)"),
            file=sys.stderr,
        )
        return 1


def _stop_on_termination():
    """SIGTERM/SIGHUP clean up like Ctrl-C (fedrisk.runs.signals), from the start."""
    from fedrisk.runs.signals import stop_on_termination

    return stop_on_termination()


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "keys":
        from fedrisk.scenario import key_reference_text

        print(key_reference_text(args.kind))
        return 0
    if args.command == "run":
        return _cmd_run(args)
    if args.command == "score":
        return _cmd_score(args)
    if args.command == "sweep":
        return _cmd_sweep(args)
    if args.command == "demo":
        from fedrisk.flower.engines import quiet_flower
        from fedrisk.runs.rundir import check_target, default_run_dir

        out = args.out or default_run_dir("demo")
        check_target(out)
        quiet_flower()
        from fedrisk.runs.demo import run_demo

        run_demo(
            out,
            pause=not args.no_pause and sys.stdin.isatty(),
            secrets=_secrets(args.secrets, out),
        )
        return 0
    if args.command == "report":
        from fedrisk.evaluation.report import render_report

        print(render_report(args.dir, args.out))
        return 0
    if args.command == "data" and args.data_command == "split":
        from fedrisk.runs.split import split_for_supernodes
        from fedrisk.scenario import load_scenario

        print(split_for_supernodes(load_scenario(args.scenario, args.overrides), args.out))
        return 0
    if args.command == "data":
        from fedrisk.data.bundled import describe_bundled

        print(describe_bundled())
        return 0
    raise AssertionError(args.command)  # pragma: no cover


def _cmd_run(args: argparse.Namespace) -> int:
    from fedrisk.runs.rundir import check_target, default_run_dir
    from fedrisk.scenario import load_scenario

    if args.resume is not None:
        if (
            args.scenario
            or args.engine
            or args.out
            or args.superlink
            or args.insecure
            or args.root_certificates
            or args.bank_files
            or args.secrets
        ):
            raise InputError(
                "--resume: continues a run as it was set up; give no SCENARIO, "
                "--engine, --out, --secrets or deployment options with it (its "
                "parties' secrets are in its checkpoint)"
            )
        from fedrisk.runs.resume import resume_run

        outcome = resume_run(
            args.resume,
            overrides=args.overrides,
            show_progress=not args.quiet,
            verbose=args.verbose,
        )
        print_run_result(outcome.summary, outcome.out_dir, quiet=args.quiet)
        _print_warnings(outcome.summary)
        return 0
    if args.scenario is None:
        raise InputError("run: give a SCENARIO file (or --resume DIR)")
    overrides = list(args.overrides)
    if args.engine:
        overrides.append(f"federation.engine={args.engine}")
    scenario = load_scenario(args.scenario, overrides)
    deployment = _deployment_options(args, scenario)
    out = args.out or default_run_dir(scenario.name)
    check_target(out)
    secrets = _secrets(args.secrets, out)
    from fedrisk.horizontal.keys import paillier_keys

    # Before the heavy imports below, so the banks' obfuscator precomputation runs on
    # the other core while Flower, scikit-learn and the data load.
    keys = (
        deployment.bank_keys(scenario)
        if deployment and deployment.bank_files
        else paillier_keys(scenario)
    )
    from fedrisk.runs.run import run_scenario

    outcome = run_scenario(
        scenario,
        out,
        show_progress=not args.quiet,
        verbose=args.verbose,
        keys=keys,
        deployment=deployment,
        secrets=secrets,
    )
    print_run_result(outcome.summary, outcome.out_dir, quiet=args.quiet)
    _print_warnings(outcome.summary)
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from fedrisk.runs.score import score_applicants  # start-up: numpy and Flower load here

    result = score_applicants(
        args.dir,
        args.ids,
        args.out,
        secrets=_secrets(args.secrets, args.dir),
        scenario=args.scenario,
        show_progress=not args.quiet,
    )
    s = result.summary
    if not args.quiet:
        found = ", ".join(
            _("{party} holds {n}").format(party=k, n=f"{v:,}") for k, v in s["found"].items()
        )
        print(
            _(
                "{applicants} applicants scored: {joint} by the joint model, {fallback} by "
                "the fallback ({model}; {found}). {bytes} bytes, {seconds} s. Scores in {out}"
            ).format(
                applicants=f"{s['applicants']:,}",
                joint=f"{s['scored_jointly']:,}",
                fallback=f"{s['fallback']:,}",
                model=s["fallback_model"].split(":")[0],
                found=found,
                bytes=f"{s['cost']['bytes_sent']:,}",
                seconds=f"{s['cost']['wall_s']:.1f}",
                out=result.out,
            )
        )
    return 0


def _secrets(path: Path | None, out: Path):
    """--secrets FILE: the master secret (created when missing), never inside the run
    folder it would be published with; None: fresh secrets per party per run."""
    if path is None:
        return None
    resolved, folder = path.resolve(), out.resolve()
    if resolved == folder or folder in resolved.parents:
        raise InputError(
            f"--secrets {path}: inside the run folder {out}, which is shared; keep the "
            "secrets file elsewhere"
        )
    from fedrisk.privacy.secrets import load_secrets_file

    return load_secrets_file(path)


def _deployment_options(args: argparse.Namespace, scenario):
    """--superlink, --root-certificates and --insecure, checked against the engine."""
    if scenario.federation.engine != "deployment":
        for flag, value in (
            ("--superlink", args.superlink),
            ("--insecure", args.insecure),
            ("--root-certificates", args.root_certificates),
            ("--bank-files", args.bank_files),
        ):
            if value:
                raise InputError(
                    f"{flag}: only used with --engine deployment (the engine "
                    f"is {scenario.federation.engine!r})"
                )
        return None
    from fedrisk.deployment.options import DeploymentOptions

    return DeploymentOptions.from_cli(
        args.superlink, args.root_certificates, args.insecure, args.bank_files, scenario
    )


def _cmd_sweep(args: argparse.Namespace) -> int:
    from fedrisk.runs.rundir import check_target, default_run_dir
    from fedrisk.scenario import load_scenario

    if not 1 <= args.seeds <= 100:
        raise InputError(f"--seeds: {args.seeds} is not allowed; allowed: 1 to 100")
    name = load_scenario(
        args.scenario, [o for o in args.overrides if "," not in o.partition("=")[2]]
    ).name
    out = args.out or default_run_dir(f"sweep-{name}")
    check_target(out)
    from fedrisk.runs.sweep import run_sweep

    result = run_sweep(
        args.scenario,
        args.overrides,
        out,
        seeds=args.seeds,
        engine=args.engine,
        show_progress=not args.quiet,
        secrets=_secrets(args.secrets, out),
    )
    if not args.quiet:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=_("sweep of {name}").format(name=name))
        for i, col in enumerate(
            (_("point"), _("seed"), "ε", "z", "AUC", _("attack AUC"), _("bound"))
        ):
            table.add_column(col, justify="left" if i == 0 else "right")
        for r in result["rows"]:
            bound = r["membership_auc_bound"]
            table.add_row(
                r["point"],
                str(r["seed"]),
                f"{r['epsilon']:.3g}",
                "-" if r["noise_multiplier"] is None else f"{r['noise_multiplier']:.3g}",
                f"{r['auc']:.4f}",
                "-" if r["membership_auc"] is None else f"{r['membership_auc']:.4f}",
                "-" if bound is None else f"{bound:.3f}",
            )
        Console().print(table)
        Console().print(
            _("Results in [bold]{out}[/bold] (sweep.csv, sweep.png, points/)").format(out=out)
        )
    else:
        print(out)  # --quiet: only where the results are, as for run
    return 0


#: the run kinds a summary names, marked for the catalogs (shown through _ below)
RUN_KINDS = (N_("horizontal"), N_("vertical"))


def print_run_result(summary: dict, out: Path, *, quiet: bool = False) -> None:
    if quiet:  # still say where the results are: the one line scripts need
        print(out)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=_("{scenario} ({kind}, {engine})").format(
            scenario=summary["scenario"], kind=_(summary["kind"]), engine=summary["engine"]
        )
    )
    cols = ("auc", "ks", "gini", "log_loss", "mean_pd", "brier")
    # the bootstrap interval of the test AUC, where summary.json has one
    interval = "auc_low" in summary["federated"]
    # fold: Chinese model names have no space to wrap at, and must not be cut off
    table.add_column(_("model"), justify="left", overflow="fold")
    for col in ("AUC", *((_("AUC 95% CI"),) if interval else ()), "KS", "Gini"):
        table.add_column(col, justify="right")
    for col in (_("log loss"), _("mean PD"), "Brier"):
        table.add_column(col, justify="right")

    def row(name: str, m: dict) -> None:
        # .get: a summary.json written before mean PD was reported still prints
        cells = ["-" if m.get(k) is None else f"{m[k]:.4f}" for k in cols]
        if interval:
            low, high = m.get("auc_low"), m.get("auc_high")
            cells.insert(1, "-" if low is None else f"{low:.3f}–{high:.3f}")
        table.add_row(name, *cells)

    row(_("federated"), summary["federated"])
    row(_("centralised (pooled, idealised)"), summary["centralised"])
    if "reference" in summary:
        row(_("reference (pooled, converged)"), summary["reference"])
    for name, m in summary["local_only"].items():
        row(_("{party} alone").format(party=name), m)
    console = Console()
    console.print(table)
    if summary.get("observed_default_rate") is not None:
        console.print(
            _(
                "Observed default rate on the test customers: {rate} (compare the mean PD column)."
            ).format(rate=f"{summary['observed_default_rate']:.4f}")
        )
    cost = summary["cost"]
    stop = (summary.get("training") or {}).get("early_stopping") or {}
    if stop.get("stopped"):
        console.print(_("[yellow]Early stopping:[/yellow] {reason}").format(reason=stop["reason"]))
    epsilon = _epsilon_line(summary.get("privacy") or {})
    if epsilon:
        console.print(epsilon)
    calibrated = cost.get("calibration_rounds", 0)
    rounds = _("{n} rounds").format(n=cost["rounds"])
    if calibrated:
        rounds = _("{n} rounds + {calibration} calibration rounds").format(
            n=cost["rounds"], calibration=calibrated
        )
    console.print(
        _(
            "{rounds}, {bytes} bytes over the wire, {seconds} s. Results in [bold]{out}[/bold]"
        ).format(
            rounds=rounds, bytes=f"{cost['bytes_sent']:,}", seconds=f"{cost['wall_s']:.1f}", out=out
        )
    )


def _epsilon_line(privacy: dict) -> str | None:
    """A DP run's accounted budget, as summary.json has it."""
    if privacy.get("dp", "none") == "none" or "epsilon" not in privacy:
        return None
    eps = privacy["epsilon"]
    shown = "∞" if privacy.get("epsilon_is_infinite") or eps is None else f"{eps:.3g}"
    unit = privacy.get("unit")
    binding = privacy.get("binding_party")
    line = _("Differential privacy ({dp}): ε = {epsilon}, δ = {delta}").format(
        dp=privacy["dp"], epsilon=shown, delta=f"{privacy.get('delta'):g}"
    )
    if unit:
        line += _(" per {unit}").format(unit=unit)
    if binding:
        line += _(", the largest of the parties' budgets ({party})").format(party=binding)
    return line + _(".")


def _print_warnings(summary: dict) -> None:
    """summary.json's warnings on stderr, as the run's other warnings are (also under
    --quiet)."""
    for warning in summary.get("warnings", ()):
        print(f"fedrisk: warning: {warning}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
