"""The project's daemons: feeder, transitioner, validators, assimilators, file_deleter.

Each stands in for the BOINC server daemon of the same name (release 1.6.2) and is run
by bin/start as its own process, polling the project database like the real ones.
"""
