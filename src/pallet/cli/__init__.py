"""The `pallet` command line: thin click commands, one module per noun."""
