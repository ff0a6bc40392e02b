"""``python -m agents.logs --out DIR --days N --policy random|popular|platform``."""

from __future__ import annotations

from agents.logs.generate import main

if __name__ == "__main__":
    main()
