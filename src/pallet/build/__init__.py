"""The frontend of `pallet build`: BuildKit's Dockerfile language in pure Python.

`dockerfile` parses a Dockerfile into BuildKit's node tree (directives, continuations,
heredocs, line numbers), `shell` is BuildKit's word lexer (quotes, escapes, `$var`
expansion), `ignore` reads `.dockerignore` files and matches paths the way moby's
patternmatcher does, `instructions` turns parsed nodes into typed records and stages.
Nothing here runs anything or touches the filesystem beyond reading files.
"""
