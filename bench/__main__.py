"""`make bench`: run every benchmark."""

from bench.reminders import main

if __name__ == "__main__":
    main()
