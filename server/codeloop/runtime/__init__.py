"""The runtime: what every host builds a session from. Session assembly (tools
from their sources, policy, prompt, budgets, store), the settings files read the
same way by every host, and the editor-facing session manager. Above the domain
and the services, below the command layer and the hosts."""
