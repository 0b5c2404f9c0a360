"""Pure, Temporal-free parts of the Claude layer: contract, file operations, rate limit,
pricing and prompt assembly."""
