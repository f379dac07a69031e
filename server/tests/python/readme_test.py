"""Runs the README's command blocks against a running demo server and checks what they
print against what the README says they print.

    python readme_test.py README.md GRPC_ADDR HTTP_ADDR MERCATOR_BIN DATA_DIR

Every ```sh and ```python block runs, in order, unless an HTML comment on one of the
three lines above it says `readme-test: skip` and why (a block that starts its own
server, say); `readme-test: retry N` re-runs each of the block's commands until it
prints what is expected, for up to N seconds (for what the server does on a timer).

- In a sh block, each command (with its `\\` continuations) runs in bash; the full-line
  `# ` comments right after it are its output, line by line, in order (other output may
  come between). `alias` lines are not run: `mercator` is the binary under test.
- In a python block, a `print(...)` line's trailing `# ` comment is what it prints.
- Addresses 127.0.0.1:8001 and :8002 become the test server's; MERCATOR_SERVER points
  the CLI at it; commands run in a scratch folder where `examples/` is the repository's
  and `mercator-data` the server's data directory (as when both run from the repository).
- An expected line matches an output line when their words are equal, numbers within
  0.5% (or 0.002), or, given to 4 or more decimals, within two units of the last (but
  in `retry` blocks); a line holding `...` or `…` stands for any lines.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

README, GRPC, HTTP, MERCATOR, DATA_DIR = sys.argv[1:6]
ROOT = os.path.dirname(os.path.abspath(README))
FENCE = re.compile(r"^```(\w*)\s*$")


def blocks(text):
    """(line number, language, lines, skip reason, retry seconds) of every fenced block."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m or not m.group(1):
            i += 1
            continue
        lang, start = m.group(1), i
        body = []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        above = " ".join(lines[max(0, start - 3):start])
        skip = re.search(r"readme-test: skip\s*(.*?)\s*-->", above)
        retry = re.search(r"readme-test: retry (\d+)", above)
        yield (start + 1, lang, body, (skip.group(1) or "no reason given") if skip else None,
               int(retry.group(1)) if retry else 0)
        i += 1


def number(token):
    try:
        return float(token.strip(",;()[]%"))
    except ValueError:
        return None


def matches(expected, actual, loose=False):
    want, got = expected.split(), actual.split()
    if len(want) != len(got):
        return False
    for w, g in zip(want, got):
        if w == g:
            continue
        a, b = number(w), number(g)
        if a is None or b is None or w.strip("0123456789.-+") != g.strip("0123456789.-+"):
            return False
        if abs(a - b) > tolerance(w, a, loose):
            return False
    return True


def tolerance(token, value, loose):
    """How far a printed number may be from the README's: 0.5% (or 0.002), but a number
    the README gives to 4 or more decimals (a model's output, deterministic on the demo)
    to two units of its last decimal, so the examples cannot drift unseen. `loose`: what
    a `retry` block prints (what the server computes on a timer, drift statistics of
    whatever the window holds) keeps the 0.5%."""
    digits = token.strip(",;()[]%").partition(".")[2]
    decimals = len(digits) if digits.isdigit() else 0
    if decimals >= 4 and not loose:
        return 2 * 10 ** -decimals
    return max(0.002, 0.005 * abs(value))


def check_output(expected, output, loose=False):
    """Each expected line, in order, matches a later output line; `...` lines skip."""
    got = [line for line in output.splitlines() if line.strip()]
    at = 0
    for want in expected:
        if "..." in want or "…" in want or not want.strip():
            continue
        while at < len(got) and not matches(want, got[at], loose):
            at += 1
        if at == len(got):
            return f"expected a line like\n    {want}\n"
        at += 1
    return None


def localise(text):
    return text.replace("127.0.0.1:8001", GRPC).replace("127.0.0.1:8002", HTTP)


def complete(command):
    try:
        shlex.split(command, comments=True)
        return True
    except ValueError:
        return False


def sh_commands(body):
    """(command, expected output lines) of a sh block."""
    out, i = [], 0
    while i < len(body):
        line = body[i]
        if not line.strip() or line.lstrip().startswith("#"):
            i += 1
            continue
        command = line
        # A command goes on past a trailing backslash, or while a quote is open.
        while i + 1 < len(body) and (command.rstrip().endswith("\\") or not complete(command)):
            i += 1
            command = command + "\n" + body[i]
        i += 1
        expected = []
        while i < len(body) and body[i].startswith("#"):
            expected.append(body[i][1:].removeprefix(" "))
            i += 1
        out.append((command, expected))
    return out


def python_expected(body):
    return [line.split("#", 1)[1].strip() for line in body
            if line.lstrip().startswith("print(") and "#" in line]


def main():
    scratch = tempfile.mkdtemp(prefix="mercator-readme-")
    os.symlink(os.path.join(ROOT, "examples"), os.path.join(scratch, "examples"))
    os.symlink(DATA_DIR, os.path.join(scratch, "mercator-data"))
    bin_dir = os.path.join(scratch, ".bin")
    os.makedirs(bin_dir)
    os.symlink(MERCATOR, os.path.join(bin_dir, "mercator"))
    env = dict(os.environ, MERCATOR_SERVER=f"http://{GRPC}",
               PATH=os.pathsep.join([bin_dir, os.path.dirname(sys.executable), os.environ["PATH"]]))
    with open(README) as f:
        text = f.read()
    ran, skipped, failures = 0, [], []
    for line, lang, body, skip, retry in blocks(text):
        if lang not in ("sh", "python"):
            continue
        if skip:
            skipped.append((line, skip))
            continue
        if lang == "python":
            code = localise("\n".join(body))
            r = subprocess.run([sys.executable, "-c", code], cwd=scratch, env=env, capture_output=True,
                               text=True, timeout=300)
            problem = (f"exit {r.returncode}" if r.returncode else
                       check_output(python_expected(body), r.stdout))
            ran += 1
            print(("ok   " if not problem else "FAIL ") + f"python block at README.md:{line}", flush=True)
            if problem:
                failures.append(f"README.md:{line} python block: {problem}\n{r.stdout}{r.stderr}")
            continue
        for command, expected in sh_commands(body):
            if command.startswith("alias "):
                continue
            deadline = time.monotonic() + retry
            while True:
                try:
                    r = subprocess.run(["bash", "-c", localise(command)], cwd=scratch, env=env,
                                       capture_output=True, text=True, timeout=120)
                    problem = (f"exit {r.returncode}" if r.returncode else
                               check_output(expected, r.stdout + r.stderr, loose=retry > 0))
                except subprocess.TimeoutExpired as e:
                    r, problem = e, "no answer within 120 s"
                    r.stdout, r.stderr = str(e.stdout or ""), str(e.stderr or "")
                if not problem or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            ran += 1
            print(("ok   " if not problem else "FAIL ") + command.splitlines()[0][:100], flush=True)
            if problem:
                failures.append(f"README.md:{line} `{command}`: {problem}--- printed:\n{r.stdout}{r.stderr}")
    shutil.rmtree(scratch, ignore_errors=True)
    for line, why in skipped:
        print(f"skipped README.md:{line}: {why}")
    for failure in failures:
        print("FAIL", failure)
    print(f"readme: {ran} commands run, {len(skipped)} blocks skipped, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
