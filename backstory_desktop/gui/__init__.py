"""The PySide6 wizard: the only package of Backstory Desktop that imports Qt."""
