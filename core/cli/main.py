"""Entry point of ``gcnn-rnn``: builds the parser from the subcommand modules and runs one.

Exit codes: 0 success, 2 bad input, 130 cancelled (SIGINT/SIGTERM), 1 anything else.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys
import traceback
from pathlib import Path

from .. import __version__
from ..errors import Cancelled, GcnnRnnError, InputDataError
from .paths import check_writable_dir
from .session import Session

#: Subcommand modules of this package, in the order ``--help`` lists them. Each defines
#: ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args, session) -> dict``.
COMMAND_MODULES = (
    "doctor",
    "warmup",
    "inspect",
    "variogram",
    "krige",
    "simulate",
    "cv",
    "synth",
    "train",
    "predict",
    "run",
    "demo",
)

EXIT_OK, EXIT_ERROR, EXIT_INPUT, EXIT_CANCELLED = 0, 1, 2, 130


#: OS errors that mean a path given by the user cannot be used (exit 2, not an engine bug).
_PATH_ERRORS = (errno.ENAMETOOLONG, errno.ELOOP, errno.ENOTDIR, errno.EACCES, errno.EISDIR)


class UsageError(Exception):
    """A command line argparse cannot accept; carries argparse's own message."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # noqa: D102 - argparse API
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


#: Folder arguments checked (created, writable) before a command starts, and file arguments
#: whose parent folder is checked: a typo must not cost a long computation first.
OUTPUT_DIR_ARGS = {"output_dir": "output folder", "model_dir": "model folder"}
OUTPUT_FILE_ARGS = {"output_json": "output file", "output": "output file", "plot": "plot file",
                    "truth": "truth raster"}


def _check_outputs(args: argparse.Namespace) -> None:
    for attr, what in OUTPUT_DIR_ARGS.items():
        if getattr(args, attr, None):
            if attr == "model_dir":  # made (atomically) by the save; a cancel leaves nothing
                check_writable_dir(Path(args.model_dir).resolve().parent, f"folder of the {what}")
            else:
                check_writable_dir(getattr(args, attr), what)
    for attr, what in OUTPUT_FILE_ARGS.items():
        value = getattr(args, attr, None)
        if isinstance(value, str) and value:
            if attr != "truth" and Path(value).is_dir():
                raise InputDataError(f"the {what} {value!r} is a folder; give a file name")
            check_writable_dir(Path(value).resolve().parent, f"folder of the {what}")


#: File arguments whose name decides the format: the suffix must match what is written.
OUTPUT_SUFFIXES = {("synth", "output"): (".gpkg",),
                   ("variogram", "plot"): (".png",)}


def _check_suffixes(args: argparse.Namespace) -> None:
    for (command, attr), suffixes in OUTPUT_SUFFIXES.items():
        value = getattr(args, attr, None)
        if args.command == command and isinstance(value, str) and value \
                and Path(value).suffix.lower() not in suffixes:
            raise InputDataError(f"--{attr} {value!r}: the file is written as "
                                 f"{'/'.join(suffixes)}; give a name ending in "
                                 f"{' or '.join(suffixes)}")


def _open_output_set(args: argparse.Namespace, module):
    """The command's all-or-nothing output set (``OUTPUT_SET`` of its module), opened: its
    folder argument now names the staging folder. ``None`` for commands without one."""
    spec = getattr(module, "OUTPUT_SET", None)
    if spec is None or not getattr(args, spec[0], None):
        return None
    from ..output_set import OutputSet

    oset = OutputSet(getattr(args, spec[0]), spec[1])
    setattr(args, spec[0], str(oset.open()))
    return oset


class _Unavailable:
    """Stands in for a command whose module cannot be imported (a dependency is missing)."""

    def __init__(self, name: str, missing: str) -> None:
        self.NAME = name
        self.missing = missing
        self.HELP = f"(unavailable: the engine package {missing!r} is not installed)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        pass  # its real options are unknown; main() accepts any

    def run(self, args: argparse.Namespace, session: Session) -> dict:
        raise GcnnRnnError(
            f"'{self.NAME}' needs the Python package {self.missing!r}, which is not installed in "
            f"{sys.executable}; set up the engine again (QGIS: Plugins > GCNN-RNN > Set up "
            "engine...) or `pip install` it"
        )


def _commands(only: str | None = None) -> dict:
    found = {}
    for name in COMMAND_MODULES if only is None else (only,):
        modname = f"{__package__}.{name}_cmd"
        try:
            module = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name == modname:  # not part of this build
                continue
            # A dependency is missing: keep the CLI (and `doctor`) usable and say what is missing.
            module = _Unavailable(name, (exc.name or "?").split(".")[0])
        found[module.NAME] = module
    return found


def _requested_command(argv: list[str]) -> str | None:
    """The subcommand named in ``argv``, if any: then only its module needs importing.

    Start-up time counts (the QGIS runner starts the engine for every algorithm run), and
    importing every subcommand drags in scipy.optimize, TensorFlow helpers and more.
    """
    for token in argv:
        if token.startswith("-"):
            continue
        return token if token in COMMAND_MODULES else None
    return None


def build_parser(only: str | None = None) -> tuple[argparse.ArgumentParser, dict]:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json-progress",
        action="store_true",
        default=argparse.SUPPRESS,
        help="write progress, logs, result and errors as JSON lines on stdout",
    )
    common.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="no progress bars or info messages")
    common.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="debug messages")
    parser = _Parser(
        prog="gcnn-rnn",
        description="Geostatistics + hybrid Conv1D/BiLSTM mapping of point samples.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"gcnn-rnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands = _commands(only)
    for name, module in commands.items():
        p = sub.add_parser(name, help=module.HELP, description=module.HELP, parents=[common])
        module.add_arguments(p)
    return parser, commands


def main(argv: list[str] | None = None, *, early_signals: list[int] | None = None) -> int:
    """Run one ``gcnn-rnn`` command; returns the exit code. Safe to call in-process.

    ``early_signals``: signals received before this call (``python -m gcnn_rnn.core`` records
    them while it imports); any of them cancels the run once its own handlers are in place.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    json_mode = "--json-progress" in argv
    session = Session(json_mode=json_mode, quiet="--quiet" in argv, verbose="--verbose" in argv)
    try:
        session.install_signal_handlers()
        if early_signals:
            raise Cancelled("cancelled while starting")
        return _run(argv, session, json_mode)
    except (Cancelled, KeyboardInterrupt):  # e.g. while the command's modules import
        session.error("cancelled", "cancelled by the user")
        return EXIT_CANCELLED
    finally:
        session.close()


def exit_process(code: int) -> None:
    """End the ``gcnn-rnn`` process with ``code`` (the console script and ``python -m``).

    The outcome is decided and its last protocol line flushed, so a SIGINT/SIGTERM arriving
    during the interpreter's teardown (about a second on a loaded machine) must not turn it
    into a kill (exit 143 over a complete new set: reliability re-run): signals are ignored
    from here. A cancelled run skips the teardown altogether, to honour the 2 s contract.
    """
    import os
    import signal

    sys.stdout.flush()
    sys.stderr.flush()
    if code == EXIT_CANCELLED:
        os._exit(EXIT_CANCELLED)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    sys.exit(code)


def console_main() -> None:
    """Entry point of the ``gcnn-rnn`` console script.

    As ``python -m gcnn_rnn.core``: signals are recorded from the start, so what ``main``
    restores when it returns is this harmless recorder, never the default handler (which
    would kill the process between the result line and :func:`exit_process`).
    """
    from .startup_signals import record_signals

    exit_process(main(early_signals=record_signals()))


#: Options whose values may begin with "-" (negative coordinates, depths), which argparse
#: would otherwise take for an option: ``--z-levels -50:0:5`` must work as typed.
NEGATIVE_VALUE_OPTIONS = ("--z-levels", "--extent")


def _join_negative_values(argv: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in NEGATIVE_VALUE_OPTIONS and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            out.append(f"{token}={argv[i + 1]}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def _unknown_options(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``--options`` of ``argv`` that neither the command nor the common flags know."""
    command = _requested_command(argv)
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    sub = subs[0].choices.get(command) if subs and command else None
    known = set(parser._option_string_actions) | (
        set(sub._option_string_actions) if sub is not None else set())
    return [t for t in argv if t.startswith("--") and t.split("=")[0] not in known]


def _run(argv: list[str], session: Session, json_mode: bool) -> int:
    argv = _join_negative_values(argv)
    parser, commands = build_parser(_requested_command(argv))
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown and not isinstance(commands.get(args.command), _Unavailable):
            parser.parse_args(argv)  # reports the unrecognised arguments
    except UsageError as exc:
        unknown = _unknown_options(parser, argv)  # name a typo rather than what it hid
        message = (f"gcnn-rnn: unrecognized arguments: {' '.join(unknown)} (see 'gcnn-rnn "
                   "--help')") if unknown else str(exc)
        session.error("usage", message)
        return EXIT_INPUT
    except SystemExit as exc:  # argparse: --help / --version
        return EXIT_INPUT if exc.code else EXIT_OK
    if not args.command:
        parser.print_help(sys.stderr)
        return EXIT_INPUT
    oset = None
    try:
        _check_outputs(args)
        _check_suffixes(args)
        oset = _open_output_set(args, commands[args.command])
        outputs = commands[args.command].run(args, session)
        if oset is not None:
            outputs = oset.commit(outputs)
        session.disarm()
    except (Cancelled, KeyboardInterrupt):
        if oset is None or not oset.committed:
            session.error("cancelled", "cancelled by the user")
            return EXIT_CANCELLED
        # the cancel came while the committed set was being tidied up: the new outputs are
        # complete, so the run succeeded (the exit code must say which set the folder holds)
        session.disarm()
        from ..output_set import final_paths

        outputs = final_paths(outputs)
    except InputDataError as exc:
        session.error(exc.kind, str(exc))
        return EXIT_INPUT
    except GcnnRnnError as exc:
        session.error(exc.kind, str(exc))
        return EXIT_ERROR
    except MemoryError:
        session.error("memory", "out of memory; use a coarser cell size or fewer neighbours")
        return EXIT_ERROR
    except RecursionError:  # deeply nested input (JSON) that slipped through a reader
        session.error("input", "the input is nested too deeply to be read")
        return EXIT_INPUT
    except OSError as exc:
        if exc.errno not in _PATH_ERRORS:
            traceback.print_exc(file=sys.stderr)
            session.error("io", f"{type(exc).__name__}: {exc}")
            return EXIT_ERROR
        # a path the user gave that the system cannot even look up (a name over 255 bytes, a
        # symlink loop, a file used as a folder, no permission): bad input, not an engine bug
        name = exc.filename if exc.filename is not None else ""
        shown = name if len(str(name)) <= 120 else f"{str(name)[:60]}...{str(name)[-40:]}"
        session.error("input", f"cannot use the path {shown!r}: {exc.strerror}; check the "
                               "file and folder names given on the command line")
        return EXIT_INPUT
    except Exception as exc:  # an engine bug: still one clean error line, details on stderr
        traceback.print_exc(file=sys.stderr)
        session.error("internal", f"{type(exc).__name__}: {exc}")
        return EXIT_ERROR
    finally:
        if oset is not None:
            oset.close()
    session.result(outputs or {})
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
