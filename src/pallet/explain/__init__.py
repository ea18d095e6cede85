"""Explanations of what pallet does, computed from the real code paths (issue 16).

- `runspec`: what a set of `pallet run` flags gives the process, from the OCI runtime spec the engine
  would write (`pallet explain run`), and the difference between two flag sets (`--compare`).
- `capabilities`: the Linux capability table with one line on what each allows.
- `image`: an image's full name, its base image, what each layer adds, what runs (`pallet explain image`).
- `tree`: the images of the store as a tree of shared layer chains (`pallet images --tree`).
- `trace`: a `pallet run --trace` trace as a tree by process and stage, its time per stage, and the
  stage costs of recent traced runs (`pallet trace`, `pallet explain run --cost`).

Nothing imports this package but the CLI: it reads every layer below it.
"""
