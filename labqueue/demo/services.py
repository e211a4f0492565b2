"""The fake mail server and the fake ERP together, in this process or as subprocesses.

For a notebook that times the checkout's real code in-process::

    with FakeServices(email_latency=0.3, erp_latency=0.25) as fakes:   # threads here
        store = Store(fakes.store_config(db_path="/tmp/nb.db"))
        store.checkout_sync({"email": "a@b.c", "items": [{"sku": "SKU-1", "qty": 1}]})
        fakes.mail.mailbox.list(), fakes.erp.inventory     # in-process only; else over HTTP:
        requests.get(fakes.mail_url + "/messages").json()

``in_process=False`` starts them as ``python -m labqueue.demo mail|erp`` subprocesses
(each with its log file), as :class:`~.stack.Stack` does. ``erp_capacity=K`` lets the ERP
serve at most K calls at once (the others wait inside it; see :mod:`.fakeerp`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from labqueue.procs import Child, child_env, python_cmd, stop_all

from .capacity import check_capacity
from .config import StoreConfig
from .fakeerp import FakeERP
from .fakemail import FakeMail
from .procs import LogDir, StackError, read_ready_file

HOST = "127.0.0.1"


class FakeServices:
    """The fake mail server and the fake ERP, in this process (threads) or as subprocesses."""

    def __init__(
        self,
        email_latency: float = 0.3,
        erp_latency: float = 0.25,
        jitter: float = 0.2,
        error_rate: float = 0.0,
        seed: int = 1,
        in_process: bool = True,
        host: str = HOST,
        smtp_port: int = 0,
        mail_port: int = 0,
        erp_port: int = 0,
        log_dir: str | os.PathLike[str] | None = None,
        start_timeout: float = 30.0,
        erp_capacity: int = 0,
    ) -> None:
        self.erp_capacity = check_capacity(erp_capacity)
        self.settings = {"jitter": jitter, "error_rate": error_rate}
        self.email_latency, self.erp_latency, self.seed = email_latency, erp_latency, seed
        self.in_process, self.host, self.start_timeout = in_process, host, start_timeout
        self.smtp_port, self.mail_port, self.erp_port = smtp_port, mail_port, erp_port
        self.log_dir_path = log_dir
        self.log_dir: LogDir | None = None
        self.mail: FakeMail | None = None
        self.erp: FakeERP | None = None
        self.children: list[Child] = []

    @property
    def mail_url(self) -> str:
        return f"http://{self.host}:{self.mail_port}"

    @property
    def erp_url(self) -> str:
        return f"http://{self.host}:{self.erp_port}"

    def store_config(self, db_path: str | None = None, redis_url: str | None = None) -> StoreConfig:
        """A StoreConfig that sends mail and ERP calls to these services."""
        return StoreConfig(
            db_path=db_path or "",
            redis_url=redis_url,
            smtp_host=self.host,
            smtp_port=self.smtp_port,
            erp_url=self.erp_url,
        )

    def start(self) -> FakeServices:
        try:
            if self.in_process:
                self._start_threads()
            else:
                self.log_dir = LogDir(self.log_dir_path, "labqueue-fakes-")
                self._start_processes(self.log_dir.path)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_threads(self) -> None:
        jitter, error_rate = self.settings["jitter"], self.settings["error_rate"]
        self.mail = FakeMail(
            self.host, self.smtp_port, self.mail_port, self.email_latency, jitter, error_rate,
            self.seed,
        ).start()  # fmt: skip
        self.erp = FakeERP(
            self.host, self.erp_port, self.erp_latency, jitter, error_rate, self.seed + 1,
            capacity=self.erp_capacity,
        ).start()  # fmt: skip
        self.smtp_port, self.mail_port, self.erp_port = (
            self.mail.smtp_port,
            self.mail.http_port,
            self.erp.port,
        )

    def _start_processes(self, logs: Path) -> None:
        common = ["--host", self.host, "--jitter", str(self.settings["jitter"])]
        common += ["--error-rate", str(self.settings["error_rate"])]
        mail_args = ["--smtp-port", str(self.smtp_port), "--http-port", str(self.mail_port)]
        mail_args += ["--latency", str(self.email_latency), "--seed", str(self.seed)]
        erp_args = ["--port", str(self.erp_port), "--latency", str(self.erp_latency)]
        erp_args += ["--seed", str(self.seed + 1)]
        if self.erp_capacity:
            erp_args += ["--capacity", str(self.erp_capacity)]
        mail = self._spawn("mail", mail_args + common, logs)
        erp = self._spawn("erp", erp_args + common, logs)
        ready_mail = self._ready(mail, logs)
        ready_erp = self._ready(erp, logs)
        self.smtp_port, self.mail_port = ready_mail["smtp_port"], ready_mail["http_port"]
        self.erp_port = ready_erp["port"]

    def _spawn(self, name: str, args: list[str], logs: Path) -> Child:
        ready = logs / f"{name}.ready"
        ready.unlink(missing_ok=True)
        argv = python_cmd("labqueue.demo", name, *args, "--ready-file", str(ready))
        child = Child(f"fake {name}", argv, child_env({}), logs / f"{name}.log", error=StackError)
        self.children.append(child.start())
        return child

    def _ready(self, child: Child, logs: Path) -> dict[str, Any]:
        ready = logs / f"{child.name.split()[-1]}.ready"
        data: dict[str, Any] = child.wait_until(
            lambda: read_ready_file(ready), self.start_timeout, "listening"
        )
        ready.unlink(missing_ok=True)
        return data

    def stop(self) -> None:
        stop_all(self.children, timeout=10)
        self.children = []
        for service in (self.mail, self.erp):
            if service is not None:
                service.stop()
        self.mail = self.erp = None
        if self.log_dir is not None:
            self.log_dir.cleanup()
            self.log_dir = None

    def pids(self) -> dict[str, int]:
        return {c.name: c.pid for c in self.children if c.pid is not None}

    def __enter__(self) -> FakeServices:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
