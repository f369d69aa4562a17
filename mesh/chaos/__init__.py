"""A Jepsen-style chaos check of the shop: shoppers record every operation while faults are
injected, then invariants over the journal and before/after snapshots say what broke."""
