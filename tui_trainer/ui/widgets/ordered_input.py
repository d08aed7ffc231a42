"""OrderedInput: an Input that applies typed keys in the order they came, however fast they come."""

from __future__ import annotations

from textual import events
from textual.widgets import Input


class OrderedInput(Input):
    """An Input whose own editing keys (backspace, delete, arrows, home/end, enter) act in typing order.

    Textual's Input inserts a printable character as soon as the key reaches it, but lets a bound key
    such as backspace bubble up to the app, which then runs the binding: keys that arrive together (a
    fast typist, keys batched by SSH or tmux) are applied out of order, so `100`, backspace x3, `3000`
    reads `3` (Textualize/textual#6605). Here the field runs its own non-priority bindings when the key
    reaches it, exactly as the app would have run them, before the next key. Priority bindings (the
    app's ctrl+c) are checked by the app before a key is forwarded, so they are unchanged. Should a
    Textual release rename its bindings map, keys simply bubble to the app again, as in a plain Input.
    """

    async def _on_key(self, event: events.Key) -> None:
        if event.is_printable:
            return  # Input's own handler (next in the MRO) inserts it
        own = getattr(getattr(self, "_bindings", None), "key_to_bindings", {})  # Textual 8's BindingsMap
        for binding in own.get(event.key, ()):
            if not binding.priority and await self.app.run_action(binding.action, self):
                event.stop()
                event.prevent_default()
                return
