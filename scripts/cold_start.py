#!/usr/bin/env python3
"""Cold start of the Lambda bootstraps: process start to first answer, on loopback.

Serves the Lambda runtime API (next invocation, response, errors) on a free 127.0.0.1 port,
starts a bootstrap against it with a sample event, and measures from just before the process
is spawned to the moment its response arrives: runtime start, reading the configuration,
building the SDK clients, fetching the keys secret, one invocation against DynamoDB Local.
The process is then stopped by its PID. Repeated RUNS times per function; prints the median,
p90 and worst, and exits 1 when a run fails or answers something other than the expected
outcome. Asserts no time: the goal is printed beside the figure.

Usage: cold_start.py [--runs N] NAME=BOOTSTRAP:EVENT:FIELD=VALUE ...
Needs the environment of `scripts/services.sh run` and the tables, seed and secret the caller
made (scripts/cold_start.sh does all of it).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GOAL_MS = 50.0
PREFIX = "/2018-06-01/runtime"


class Runtime:
    """One invocation at a time: the event to hand out and the answer that came back."""

    def __init__(self):
        self.lock = threading.Condition()
        self.event = None
        self.request_id = None
        self.answer = None
        self.answered_at = None

    def arm(self, request_id, event):
        with self.lock:
            self.request_id, self.event = request_id, event
            self.answer = self.answered_at = None

    def take(self):
        with self.lock:
            event, self.event = self.event, None
            return event

    def finish(self, kind, body):
        with self.lock:
            self.answered_at = time.perf_counter()
            self.answer = (kind, body)
            self.lock.notify_all()

    def wait(self, timeout):
        with self.lock:
            self.lock.wait_for(lambda: self.answer is not None, timeout)
            return self.answer, self.answered_at


class QuietServer(ThreadingHTTPServer):
    """A stopped process's connection is reset: not worth a traceback."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


def handler_for(runtime):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, body=b"", headers=()):
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path != f"{PREFIX}/invocation/next":
                return self.reply(404)
            event = runtime.take()
            if event is None:
                # The next invocation never comes: the process is stopped before.
                time.sleep(60)
                return
            deadline = int(time.time() * 1000) + 30_000
            self.reply(
                200,
                event,
                [
                    ("Content-Type", "application/json"),
                    ("Lambda-Runtime-Aws-Request-Id", runtime.request_id),
                    ("Lambda-Runtime-Deadline-Ms", str(deadline)),
                    (
                        "Lambda-Runtime-Invoked-Function-Arn",
                        "arn:aws:lambda:us-east-1:123456789012:function:predebit-cold-start",
                    ),
                    ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"),
                ],
            )

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.reply(202)
            if self.path.endswith("/response"):
                runtime.finish("response", body)
            elif self.path.endswith("/error"):
                runtime.finish("error", body)

    return Handler


def parse_case(text):
    name, rest = text.split("=", 1)
    bootstrap, event, expect = rest.split(":", 2)
    field, value = expect.split("=", 1)
    try:
        value = json.loads(value)
    except ValueError:
        pass
    return name, bootstrap, event, field, value


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=int(os.environ.get("PREDEBIT_COLD_RUNS", "20")))
    parser.add_argument("cases", nargs="+")
    args = parser.parse_args()

    env = dict(
        os.environ,
        AWS_LAMBDA_FUNCTION_NAME="predebit-cold-start",
        AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
        AWS_LAMBDA_LOG_GROUP_NAME="/aws/lambda/predebit-cold-start",
        AWS_LAMBDA_LOG_STREAM_NAME="cold-start",
    )

    failed = False
    print(f"cold start, process start to first answer ({args.runs} runs each, goal <= {GOAL_MS:.0f} ms)")
    for case in args.cases:
        name, bootstrap, event_path, field, expected = parse_case(case)
        with open(event_path, "rb") as f:
            event = f.read()
        times = []
        for run in range(args.runs):
            # A runtime API of its own per run: a stopped process's last request cannot take
            # the next run's event.
            runtime = Runtime()
            server = QuietServer(("127.0.0.1", 0), handler_for(runtime))
            threading.Thread(target=server.serve_forever, daemon=True).start()
            runtime.arm(f"cold-{name}-{run}", event)
            run_env = dict(env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}")
            started = time.perf_counter()
            process = subprocess.Popen(
                [bootstrap], env=run_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            answer, answered_at = runtime.wait(timeout=30)
            process.kill()
            _, stderr = process.communicate()
            server.shutdown()
            server.server_close()
            if answer is None:
                print(f"{name}: run {run} did not answer within 30 s", file=sys.stderr)
                sys.stderr.write(stderr.decode(errors="replace")[-2000:])
                failed = True
                break
            kind, body = answer
            got = json.loads(body).get(field) if kind == "response" else None
            if got != expected:
                print(f"{name}: run {run} answered {kind} {body[:300]!r}, expected {field}={expected}",
                      file=sys.stderr)
                failed = True
                break
            times.append((answered_at - started) * 1000)
        if len(times) == args.runs:
            times.sort()
            p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
            print(f"{name:<10} median {statistics.median(times):6.1f} ms  p90 {p90:6.1f} ms  "
                  f"worst {times[-1]:6.1f} ms  ({os.path.getsize(bootstrap) / 1e6:.1f} MB bootstrap)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
