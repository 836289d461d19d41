"""The web console served by the node's HTTP interface (docs/console.md): resolve, identifier
pages with the trace graph, enterprise administration, the node dashboard."""

from idnode.console.app import BASE, Console, RootPage, mount

__all__ = ["BASE", "Console", "RootPage", "mount"]
