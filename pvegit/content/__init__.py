"""What a file or a diff is for every face: text, binary, secret or too large; its masked lines.

``filediff`` is the one content model (``FileDiff``, ``FileContent``) that the
CLI, the pages, the API and the notifications render; ``masking`` finds the
password lines of files pvegit must keep; ``redact`` hides credentials in URLs.
"""
