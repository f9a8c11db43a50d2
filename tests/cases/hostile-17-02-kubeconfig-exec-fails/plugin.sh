#!/bin/sh
echo "TOKENsecretFAILED0123456789"
echo "stderr TOKENsecretFAILED0123456789" >&2
exit 3
