"""Live progress on the terminal: a line per finished node, the running ones under a spinner."""

from __future__ import annotations

import threading

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from builder.graph.execute import Outcome
from builder.graph.step import Node

MARKS = {"built": "[green]✓ built[/]", "verified": "[green]✓ verified[/]", "cached": "[dim]= cached[/]",
         "pulled": "[cyan]↓ pulled[/]", "failed": "[red]✗ FAILED[/]", "blocked": "[yellow]- blocked[/]"}


class ConsoleReporter:
    def __init__(self, console: Console, total: int):
        self.console = console
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                                 console=console, transient=True)
        self.task = self.progress.add_task("starting", total=total)
        self.running: list[str] = []
        self._lock = threading.Lock()

    def __enter__(self) -> ConsoleReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def _describe(self) -> None:
        shown = ", ".join(self.running[:3]) + (f" +{len(self.running) - 3}" if len(self.running) > 3 else "")
        self.progress.update(self.task, description=shown or "waiting")

    def started(self, node: Node, reasons: list[str]) -> None:
        with self._lock:
            self.running.append(node.title)
            self.console.print(f"[bold]▶[/] {node.title} [dim]({'; '.join(reasons)[:120]})[/]")
            self._describe()

    def finished(self, node: Node, outcome: Outcome) -> None:
        with self._lock:
            if node.title in self.running:
                self.running.remove(node.title)
            extra = f" {outcome.seconds:.1f}s" if outcome.status not in ("cached", "blocked") else ""
            line = f"{MARKS[outcome.status]} {node.title}{extra}"
            if outcome.error:
                line += f"\n    {outcome.error}" + (f"\n    log: {outcome.log}" if outcome.log else "")
            self.console.print(line)
            self.progress.advance(self.task)
            self._describe()
