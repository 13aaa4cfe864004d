"""The Textual front: screens and widgets over the engine's public API and events."""
