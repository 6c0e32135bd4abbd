from .umbrella import main_entry

main_entry()
