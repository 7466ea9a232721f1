"""One typed Python method per Roost script.

:data:`roost.redis.contracts.CONTRACTS` states, for each ``lua/NAME.lua``, the KEYS, ARGV
and replies it takes and gives, in the notation of the script's header (see
:mod:`roost.redis.contract`); a test holds each one equal to the header. A method names
every key and argument; ``CallsBase._run`` (:mod:`roost.redis.calls.base`) lays them out in
the contract's order (refusing a name the contract lacks or a slot left without a value),
puts the namespace slots (``@``) first from the route, and reads the reply as the script's
reply class (:mod:`roost.redis.replies`).

To add a script: write ``lua/NAME.lua`` with its header, add its contract to
:mod:`roost.redis.contracts`, a method that calls ``CallsBase._run`` to the module of its
group (``lease``, ``delivery``, ``upkeep`` or ``operators``), and a reply class if none fits.
"""

from roost.redis.calls.base import ScriptRunner
from roost.redis.calls.typed import ScriptCalls
from roost.redis.contracts import CONTRACTS

__all__ = ["CONTRACTS", "ScriptCalls", "ScriptRunner"]
