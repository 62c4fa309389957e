"""The local web page of ``avrestore serve``: ``server`` (HTTP routes and the page), ``jobs``
(one restoration at a time), ``worker`` (the restoration, in its own process), ``uploads``,
``previews`` (the before/after frames) and ``catalog`` (models and their leaderboard figures).
"""
