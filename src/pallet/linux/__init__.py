"""The kernel layer for networking: one thin module per interface.

`netlink` (rtnetlink by pyroute2: links, addresses, routes, in any network namespace), `nftables`
(one `nft -j -f -` transaction per call) and `sysctl` (/proc/sys). Policy lives in `pallet.network`.
(The runtime's kernel modules are still in `pallet.runtime.linux`; both are the same layer.)
"""
