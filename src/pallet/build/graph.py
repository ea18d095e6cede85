"""The stage graph: which stages a target needs, in an order that builds dependencies first.

A stage depends on another when its FROM names it, or a `COPY --from` or `RUN --mount from=`
does (by AS name or index). A `--from` that names no stage is an image reference. Stages the
target does not reach are skipped; a cycle (only possible through forward references) is an
error.
"""

from __future__ import annotations

from collections.abc import Mapping

from pallet.build.instructions import Copy, Dockerfile, Run, Stage
from pallet.build.shell import Lex, ShellError
from pallet.errors import PalletError

__all__ = ["StageGraph", "plan"]


def _stage_ref(df: Dockerfile, ref: str, before: int | None = None) -> Stage | None:
    try:
        s = df.stage(ref)
    except KeyError:
        return None
    if ref.isdigit() and before is not None and s.index >= before:
        return None
    return s


class StageGraph:
    def __init__(self, df: Dockerfile, meta: Mapping[str, str]) -> None:
        self.df = df
        self.deps: dict[int, set[int]] = {}
        self.base_stage: dict[int, int | None] = {}
        lex = Lex(df.escape_token)
        for s in df.stages:
            deps: set[int] = set()
            base, _ = df.resolve_from(s, meta)
            b = _stage_ref(df, base, s.index) if not base.isdigit() else None
            if b is not None and b.name == base.lower():
                if b.index == s.index:
                    raise PalletError(f"circular dependency detected on stage: {s.name}", exit_code=1)
                deps.add(b.index)
                self.base_stage[s.index] = b.index
            else:
                self.base_stage[s.index] = None
            for inst in s.commands:
                refs: list[str] = []
                if isinstance(inst, Copy) and inst.from_:
                    refs.append(inst.from_)
                if isinstance(inst, Run):
                    refs += [m.from_ for m in inst.mounts if getattr(m, "from_", None)]
                for r in refs:
                    try:
                        r = lex.process_word(r, meta)
                    except ShellError:
                        pass
                    d = _stage_ref(self.df, r, s.index)
                    if d is not None:
                        if d.index == s.index:
                            raise PalletError(f"circular dependency detected on stage: {s.name or s.index}",
                                              exit_code=1)
                        deps.add(d.index)
            self.deps[s.index] = deps

    def needed(self, target: int) -> list[int]:
        """The stages `target` needs, dependencies before dependants."""
        order: list[int] = []
        state: dict[int, str] = {}

        def visit(i: int) -> None:
            if state.get(i) == "done":
                return
            if state.get(i) == "visiting":
                s = self.df.stages[i]
                raise PalletError(f"circular dependency detected on stage: {s.name or i}", exit_code=1)
            state[i] = "visiting"
            for d in sorted(self.deps[i]):
                visit(d)
            state[i] = "done"
            order.append(i)

        visit(target)
        return order


def plan(df: Dockerfile, meta: Mapping[str, str], target: str | None) -> tuple[StageGraph, list[int]]:
    if target:
        try:
            t = df.stage(target)
        except KeyError:
            raise PalletError(f"target stage {target!r} could not be found", exit_code=1) from None
    else:
        t = df.target
    g = StageGraph(df, meta)
    return g, g.needed(t.index)
