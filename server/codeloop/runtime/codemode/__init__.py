"""Code mode: the model writes one Python program that calls the tools as functions, instead
of one model request per tool call (CodeAct; Cloudflare's Code Mode; Anthropic's "code
execution with MCP").

- ``stubs``: the ``codeloop_tools`` module made from the tools' JSON schemas;
- ``child``: the program's bootstrap (its text is sent; it runs with ``python -I``);
- ``runner``: the subprocess in the sandbox, its limits and its tool-call channel;
- ``tool``: the ``run_code`` tool and its tool source.
"""

from codeloop.runtime.codemode.runner import CallRecord, Capture, CodeRun, run_program
from codeloop.runtime.codemode.stubs import MODULE, module_source, python_name
from codeloop.runtime.codemode.tool import CodeModeSettings, CodeModeSource, RunCode, render

__all__ = ["CallRecord", "Capture", "CodeModeSettings", "CodeModeSource", "CodeRun", "MODULE", "RunCode",
           "module_source", "python_name", "render", "run_program"]
