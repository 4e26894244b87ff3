"""The Tavus calls Palisade makes, and what kind of call each one is."""

from __future__ import annotations

from enum import StrEnum


class OperationKind(StrEnum):
    """How safe a call is to repeat; the retry policy is chosen by kind."""

    READ = "read"
    # Deleting or ending twice is harmless: the second call finds nothing to do.
    IDEMPOTENT_WRITE = "idempotent_write"
    # Tavus has no idempotency key, so a repeated create can bill twice.
    CREATE = "create"
    # A message Tavus acts on each time it arrives (an appended context, words to say):
    # sent again only when Tavus provably did not take it.
    AT_MOST_ONCE = "at_most_once"


class Operation(StrEnum):
    """One Tavus endpoint as Palisade uses it."""

    CREATE_PAL = "create_pal"
    GET_PAL = "get_pal"
    LIST_PALS = "list_pals"
    DELETE_PAL = "delete_pal"
    CREATE_CONVERSATION = "create_conversation"
    GET_CONVERSATION = "get_conversation"
    LIST_CONVERSATIONS = "list_conversations"
    END_CONVERSATION = "end_conversation"
    # An interaction relayed to a live conversation. Its kind here is the safe default;
    # the client sends each interaction under the kind its event type allows
    # (``app.tavus.retry.interaction_kind``).
    SEND_APP_MESSAGE = "send_app_message"

    @property
    def kind(self) -> OperationKind:
        return _KINDS[self]

    @property
    def mutates(self) -> bool:
        """Whether a successful call changes state at Tavus."""
        return self.kind is not OperationKind.READ


_KINDS: dict[Operation, OperationKind] = {
    Operation.CREATE_PAL: OperationKind.CREATE,
    Operation.GET_PAL: OperationKind.READ,
    Operation.LIST_PALS: OperationKind.READ,
    Operation.DELETE_PAL: OperationKind.IDEMPOTENT_WRITE,
    Operation.CREATE_CONVERSATION: OperationKind.CREATE,
    Operation.GET_CONVERSATION: OperationKind.READ,
    Operation.LIST_CONVERSATIONS: OperationKind.READ,
    Operation.END_CONVERSATION: OperationKind.IDEMPOTENT_WRITE,
    Operation.SEND_APP_MESSAGE: OperationKind.AT_MOST_ONCE,
}
