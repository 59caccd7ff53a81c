"""Chat commands: thin Telegram handlers (``handlers``) over plain logic (``commands``), one access check.

Who may do what: config ``admins`` everything; a chat's own administrators (checked with getChatMember,
also for a channel named from a private chat) that chat's subscriptions; a private chat's user their
own subscription; everyone else ``/start``, ``/help``, ``/test`` and ``/rules`` read-only.
"""
